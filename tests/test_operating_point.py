import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import ConfigError
from workbench.core.knn import decide
from workbench.decisions.operating_point import abstain_curve, fit_operating_point, mix_weights
from workbench.core.policy import tier_probabilities
from workbench.decisions.targets import Targets

RANK = np.array([0, 0, 1, 1, 1, 2, 2])
COST = np.array([[0.0, 1.0, 2.0], [4.0, 0.0, 1.0], [8.0, 4.0, 0.0]])
TIERS = ("cheap", "medium", "strong")


def fit(shares, labels, cost, *, weights=None, **targets):
    """fit_operating_point with targets given by keyword: cost policy and no abstain budget unless said."""
    targets = {"policy": "cost", "max_abstain": None, **targets}
    return fit_operating_point(shares, labels, RANK, cost, targets=Targets(**targets), weights=weights)


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
    op = fit(shares, labels, COST, max_downgrade=0.02)
    assert op.met and op.downgrade_rate <= 0.02
    looser = fit(shares, labels, COST, max_downgrade=0.10)
    # a looser target never routes less traffic correctly by the router itself
    assert looser.tier_accuracy - looser.abstain_rate >= op.tier_accuracy - op.abstain_rate


def test_fit_with_one_policy_abstains_as_little_as_the_target_allows():
    shares, labels = _synthetic()
    strict = fit(shares, labels, None, policy="vote", max_downgrade=0.02)
    loose = fit(shares, labels, None, policy="vote", max_downgrade=0.05)
    assert strict.met and loose.met and loose.abstain_rate < strict.abstain_rate
    # the next smaller threshold (one message less abstention) would break the target
    routed = RANK[decide(shares, RANK)[0]]
    scores = tier_probabilities(shares, RANK)[np.arange(len(routed)), routed]
    curve = abstain_curve(scores, RANK[labels], routed)
    i = int(np.flatnonzero(curve["threshold"] == strict.policy.threshold)[0])
    assert curve["downgrade_rate"][i] <= 0.02 < curve["downgrade_rate"][i - 1]


def test_fit_respects_an_abstain_budget():
    shares, labels = _synthetic(1)
    op = fit(shares, labels, COST, policy="vote", max_abstain=0.10)
    assert op.met and op.abstain_rate <= 0.10 and op.policy.threshold is not None
    routed, abstain, _ = op.policy.apply(shares, RANK)
    assert abstain.mean() == pytest.approx(op.abstain_rate)


def test_fit_says_when_targets_cannot_be_met():
    shares, labels = _synthetic(2)
    op = fit(shares, labels, COST, policy="vote", max_downgrade=0.0, max_abstain=0.0)
    assert not op.met and op.abstain_rate == 0.0


def test_fit_needs_a_target():
    shares, labels = _synthetic(3, n=20)
    with pytest.raises(ConfigError, match="needs a target"):
        fit(shares, labels, COST)


def test_mix_weights_reweight_the_rates_to_a_traffic_mix():
    true, routed = np.array([0, 0, 1, 2]), np.array([0, 2, 1, 1])
    w = mix_weights(true, {"cheap": 85, "medium": 6, "strong": 9}, TIERS)
    assert w.sum() == pytest.approx(1.0) and w[0] == pytest.approx(0.425)
    c = abstain_curve(np.ones(4), true, routed, weights=w)
    assert c["upgrade_rate"][0] == pytest.approx(0.425) and c["downgrade_rate"][0] == pytest.approx(0.09)


def test_fit_for_a_mix_without_strong_traffic_needs_no_abstention():
    shares, labels = _synthetic(4)
    w = mix_weights(RANK[labels], {"cheap": 1.0}, TIERS)
    op = fit(shares, labels, None, policy="vote", max_downgrade=0.0, weights=w)
    assert op.met and op.downgrade_rate == 0 and op.policy.threshold == 0.0


def test_mix_with_an_unknown_tier_is_refused():
    with pytest.raises(ConfigError, match="unknown tier"):
        mix_weights(np.array([0, 1]), {"premium": 1.0}, TIERS)


def _objective(policy, shares, labels):
    """Per message: routed to the right tier or abstained (the categorizer handles it)."""
    routed, abstain, _ = policy.apply(shares, RANK)
    return abstain | (routed == RANK[labels])


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), budget=st.sampled_from([0.0, 0.05, 0.10]))
def test_any_keeps_plain_voting_unless_a_cost_rule_beats_it_by_more_than_noise(seed, budget):
    """The one-standard-error rule across decision rules: vote, then cost by increasing downgrade weight."""
    shares, labels = _synthetic(seed, n=300)
    weights = (0.25, 0.5, 1.0, 2.0)
    op = fit(shares, labels, COST, policy="any", max_abstain=budget, downgrade_weights=weights)
    rules = [fit(shares, labels, COST, policy="vote", max_abstain=budget)] + \
        [fit(shares, labels, COST, policy="cost", max_abstain=budget, downgrade_weights=(w,))
         for w in weights]
    best = max(rules, key=lambda r: r.tier_accuracy)
    best_msgs = _objective(best.policy, shares, labels)
    within = [r for r in rules if best.tier_accuracy - r.tier_accuracy
              <= np.sqrt(np.sum(_objective(r.policy, shares, labels) != best_msgs)) / len(labels) + 1e-12]
    first = within[0]
    assert (op.policy.name, op.downgrade_weight) == (first.policy.name, first.downgrade_weight)
    assert op.tier_accuracy == pytest.approx(first.tier_accuracy) and op.met


def test_any_takes_the_cost_rule_when_it_clearly_routes_more_right():
    """Split medium votes (analysis + research_lookup outweigh a casual plurality): the tier-level rule is right."""
    split = np.array([0.34, 0.0, 0.33, 0.33, 0.0, 0.0, 0.0])
    clear = np.eye(7)[np.arange(150) % 7] * 0.9 + 0.1 / 7
    shares = np.vstack([np.tile(split, (150, 1)), clear])
    labels = np.concatenate([np.full(150, 2), np.arange(150) % 7])
    op = fit(shares, labels, COST, policy="any", max_abstain=0.0)
    assert op.policy.name == "cost" and op.tier_accuracy == 1.0
