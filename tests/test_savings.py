import numpy as np
import pytest

from workbench.errors import ConfigError
from workbench.decisions.savings import normalize_mix, routing_cost, savings_curve, savings_table

TIERS = ("cheap", "medium", "strong")
PRICES = {"cheap": 1.0, "medium": 2.0, "strong": 10.0}   # per million tokens
TRUE = np.array([0, 0, 0, 0, 1, 1, 2, 2])
ROUTED = np.array([0, 0, 2, 0, 1, 0, 2, 1])               # one upgrade cheap->strong, two downgrades
USER_MIX = {"cheap": 85, "medium": 6, "strong": 9}


def test_perfect_routing_costs_the_mix_weighted_price():
    c = routing_cost(TRUE, TRUE, None, TIERS, PRICES, tokens_per_message=1000)
    # pool mix 4/8 cheap, 2/8 medium, 2/8 strong; 1,000 tokens per message, per 1,000 messages
    assert c["cost"] == pytest.approx(0.5 * 1 + 0.25 * 2 + 0.25 * 10)
    assert c["tier_accuracy"] == 1 and c["upgrade_cost"] == 0 and c["downgrade_saving"] == 0


def test_misrouting_is_split_into_upgrade_cost_and_downgrade_saving():
    c = routing_cost(TRUE, ROUTED, None, TIERS, PRICES)
    assert c["upgrade_cost"] == pytest.approx(0.5 * (10 - 1) / 4)
    assert c["downgrade_saving"] == pytest.approx(0.25 * (2 - 1) / 2 + 0.25 * (10 - 2) / 2)
    assert c["cost"] == pytest.approx(c["perfect_cost"] + c["upgrade_cost"] - c["downgrade_saving"])


def test_abstained_messages_are_routed_correctly_and_pay_the_categorizer():
    abstain = ROUTED != TRUE
    c = routing_cost(TRUE, ROUTED, abstain, TIERS, PRICES, categorizer_tokens=500)
    assert c["tier_accuracy"] == 1 and c["downgrade_rate"] == 0
    assert c["categorizer_cost"] == pytest.approx(c["abstain_rate"] * 0.5 * PRICES["cheap"])
    assert c["cost"] == pytest.approx(c["perfect_cost"] + c["categorizer_cost"])


def test_a_users_mix_reweights_per_true_tier():
    c = routing_cost(TRUE, ROUTED, None, TIERS, PRICES, traffic_mix=USER_MIX)
    assert c["upgrade_rate"] == pytest.approx(0.85 * 0.25)
    assert c["downgrade_rate"] == pytest.approx(0.06 * 0.5 + 0.09 * 0.5)


def test_savings_table_compares_fixed_strategies_with_the_router():
    t = savings_table(TRUE, {"router": (ROUTED, None)}, TIERS, PRICES, traffic_mix=USER_MIX)
    rows = t.set_index("strategy")
    assert rows.loc["always strong", "saved_vs_strong"] == 0
    assert rows.loc["always medium", "cost_per_1k"] == pytest.approx(2.0)
    label = rows.loc["label source (LLM categorizer on every message)"]
    assert label["tier_accuracy"] == pytest.approx(1) and label["categorizer_cost"] > 0
    assert 0 < rows.loc["router", "saved_vs_strong"] < 1
    pool_mix = savings_table(TRUE, {"router": (ROUTED, None)}, TIERS, PRICES).set_index("strategy")
    assert pool_mix.loc["router", "cost_per_1k"] != pytest.approx(rows.loc["router", "cost_per_1k"])


def test_savings_curve_costs_fall_as_abstention_removes_upgrades():
    scores = np.where(ROUTED > TRUE, 0.1, 0.9)
    curve = savings_curve(TRUE, ROUTED, scores, TIERS, PRICES, thresholds=[0.0, 0.5])
    assert curve["abstain_rate"].tolist() == [0.0, 0.125]
    assert curve["cost_per_1k"][1] < curve["cost_per_1k"][0]


@pytest.mark.parametrize("mix, message", [({"cheap": 1, "premium": 1}, "unknown tier"),
                                          ({"cheap": 0}, "positive sum")])
def test_bad_mix_is_a_clear_error(mix, message):
    with pytest.raises(ConfigError, match=message):
        normalize_mix(mix, TIERS)


def test_missing_price_names_the_tier():
    with pytest.raises(ConfigError, match="missing \\['strong'\\]"):
        routing_cost(TRUE, TRUE, None, TIERS, {"cheap": 1, "medium": 2})
