import numpy as np
import pytest

from workbench.errors import ConfigError
from workbench.knn import decide
from workbench.policy import (DecisionPolicy, abstain_curve, cost_aware_tiers, fit_operating_point,
                              tier_probabilities, weighted_cost)

# categories: casual, simple_lookup (cheap) | analysis, research_lookup, creative (medium) | coding, reasoning (strong)
RANK = np.array([0, 0, 1, 1, 1, 2, 2])
ZERO_ONE = 1.0 - np.eye(3)
COST = np.array([[0.0, 1.0, 2.0], [4.0, 0.0, 1.0], [8.0, 4.0, 0.0]])
SHARES = np.array([
    [0.6, 0.0, 0.0, 0.0, 0.0, 0.4, 0.0],   # cheap wins the vote; strong is costly to miss
    [0.0, 0.0, 0.3, 0.3, 0.0, 0.4, 0.0],   # coding wins the vote, but medium has 0.6 of the votes
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5],   # certain strong
    [0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1],   # unsure
])


def test_tier_probabilities_sum_the_category_shares_per_tier():
    p = tier_probabilities(SHARES, RANK)
    np.testing.assert_allclose(p[1], [0.0, 0.6, 0.4])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_zero_one_cost_is_plain_voting_over_tiers():
    rng = np.random.default_rng(0)
    shares = rng.dirichlet(np.ones(7) * 0.5, size=500)
    probs = tier_probabilities(shares, RANK)
    tier_vote = decide(probs, np.arange(3))[0]
    np.testing.assert_array_equal(cost_aware_tiers(probs, ZERO_ONE), tier_vote)


def test_zero_one_cost_gives_the_winning_categorys_tier_when_its_tier_leads():
    rng = np.random.default_rng(1)
    shares = rng.dirichlet(np.ones(7) * 0.3, size=500)
    pred = decide(shares, RANK)[0]
    probs = tier_probabilities(shares, RANK)
    leads = probs[np.arange(500), RANK[pred]] >= probs.max(axis=1) - 1e-12
    routed = cost_aware_tiers(probs, ZERO_ONE)
    assert leads.mean() > 0.8
    np.testing.assert_array_equal(routed[leads], RANK[pred][leads])


def test_vote_policy_routes_to_the_winning_categorys_tier():
    routed, abstain, _ = DecisionPolicy("vote").apply(SHARES, RANK)
    assert routed.tolist() == [0, 2, 2, 1] and not abstain.any()


def test_costly_downgrades_push_the_tier_up():
    routed, _, _ = DecisionPolicy("cost", COST.tolist()).apply(SHARES, RANK)
    assert routed[0] == 2           # 0.4 chance of a coding message: cheap would cost 3.2, strong 1.2
    assert routed[2] == 2


def test_abstain_below_threshold_keeps_the_best_guess():
    routed, abstain, _ = DecisionPolicy("vote", criterion="confidence", threshold=0.45).apply(SHARES, RANK)
    assert abstain.tolist() == [False, True, False, True]
    assert routed.tolist() == [0, 2, 2, 1]


def test_weighted_cost_scales_only_downgrades():
    w = weighted_cost(COST, 0.5)
    np.testing.assert_allclose(w, [[0, 1, 2], [2, 0, 1], [4, 2, 0]])


def test_policy_round_trips_through_metadata():
    pol = DecisionPolicy("cost", COST.tolist(), "margin", 0.25)
    assert DecisionPolicy.from_metadata(pol.to_metadata()) == pol
    assert DecisionPolicy.from_metadata(None) == DecisionPolicy()


@pytest.mark.parametrize("kw, message", [
    ({"name": "oracle"}, "policy must be one of"),
    ({"criterion": "vibes"}, "criterion must be one of"),
    ({"name": "cost"}, "needs a cost matrix"),
    ({"threshold": 1.5}, "in \\[0, 1\\]; got 1.5"),
])
def test_bad_policy_parameters_name_the_rule_and_value(kw, message):
    with pytest.raises(ConfigError, match=message):
        DecisionPolicy(**kw)


def test_abstain_curve_runs_from_never_to_always():
    c = abstain_curve([0.9, 0.2, 0.6, 0.4], [2, 2, 0, 1], [2, 1, 0, 2])
    assert c["abstain_rate"][0] == 0 and c["abstain_rate"][-1] == 1
    assert c["downgrade_rate"][0] == 0.25 and c["upgrade_rate"][0] == 0.25
    assert c["tier_accuracy"][-1] == 1.0
    # abstaining on the two least confident messages removes both errors
    i = np.flatnonzero(c["abstain_rate"] == 0.5)[0]
    assert c["tier_accuracy"][i] == 1.0 and c["answered_tier_accuracy"][i] == 1.0


def _synthetic(seed=0, n=600):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    conc = rng.uniform(0.5, 6, n)
    shares = np.array([rng.dirichlet(np.where(np.arange(7) == y, c, 0.4)) for y, c in zip(labels, conc)])
    return shares, labels


def test_fit_meets_a_downgrade_target():
    shares, labels = _synthetic()
    op = fit_operating_point(shares, labels, RANK, COST, max_downgrade=0.02)
    assert op.met and op.downgrade_rate <= 0.02
    looser = fit_operating_point(shares, labels, RANK, COST, max_downgrade=0.10)
    # a looser target never routes less traffic correctly by the router itself
    assert looser.tier_accuracy - looser.abstain_rate >= op.tier_accuracy - op.abstain_rate


def test_fit_with_one_policy_abstains_as_little_as_the_target_allows():
    shares, labels = _synthetic()
    strict = fit_operating_point(shares, labels, RANK, policy="vote", max_downgrade=0.02)
    loose = fit_operating_point(shares, labels, RANK, policy="vote", max_downgrade=0.05)
    assert strict.met and loose.met and loose.abstain_rate < strict.abstain_rate
    # the next smaller threshold (one message less abstention) would break the target
    routed = RANK[decide(shares, RANK)[0]]
    scores = tier_probabilities(shares, RANK)[np.arange(len(routed)), routed]
    curve = abstain_curve(scores, RANK[labels], routed)
    i = int(np.flatnonzero(curve["threshold"] == strict.policy.threshold)[0])
    assert curve["downgrade_rate"][i] <= 0.02 < curve["downgrade_rate"][i - 1]


def test_fit_respects_an_abstain_budget():
    shares, labels = _synthetic(1)
    op = fit_operating_point(shares, labels, RANK, COST, policy="vote", max_abstain=0.10)
    assert op.met and op.abstain_rate <= 0.10 and op.policy.threshold is not None
    routed, abstain, _ = op.policy.apply(shares, RANK)
    assert abstain.mean() == pytest.approx(op.abstain_rate)


def test_fit_says_when_targets_cannot_be_met():
    shares, labels = _synthetic(2)
    op = fit_operating_point(shares, labels, RANK, COST, policy="vote", max_downgrade=0.0, max_abstain=0.0)
    assert not op.met and op.abstain_rate == 0.0


def test_fit_needs_a_target():
    shares, labels = _synthetic(3, n=20)
    with pytest.raises(ConfigError, match="needs a target"):
        fit_operating_point(shares, labels, RANK, COST)
