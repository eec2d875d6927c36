import numpy as np
import pytest

from workbench.errors import ConfigError
from workbench.core.knn import decide
from workbench.core.policy import DecisionPolicy, cost_aware_tiers, tier_probabilities, weighted_cost

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
