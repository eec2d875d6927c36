"""Routing metrics at category and tier level, with hand-computed expectations."""
import numpy as np
import pandas as pd
import pytest

from workbench.analysis.metrics import compute_metrics, format_metrics, row_normalize

# cheap: casual, simple_lookup; medium: analysis, research_lookup, creative; strong: coding, reasoning
TRUE = ["casual", "casual", "simple_lookup", "analysis", "research_lookup", "coding", "coding", "reasoning"]
PRED = ["casual", "coding", "simple_lookup", "research_lookup", "casual", "coding", "analysis", "simple_lookup"]


@pytest.fixture()
def m(taxonomy):
    return compute_metrics(TRUE, PRED, taxonomy, groups={"lang": ["en", "en", "de", "de", "en", "en", "de", "en"]})


def test_headline_rates_are_shares_of_all_messages(m):
    assert m.n == 8
    assert m.category_accuracy == pytest.approx(3 / 8)  # casual, simple_lookup, coding
    # analysis -> research_lookup is the same tier: free at tier level
    assert m.tier_accuracy == pytest.approx(4 / 8)
    assert m.downgrade_rate == pytest.approx(3 / 8)  # research->casual, coding->analysis, reasoning->simple_lookup
    assert m.upgrade_rate == pytest.approx(1 / 8)    # casual->coding
    assert m.tier_accuracy + m.downgrade_rate + m.upgrade_rate == pytest.approx(1)


def test_confusions_at_both_levels_count_every_message(m, taxonomy):
    assert list(m.confusion_category.index) == list(taxonomy.categories)
    assert m.confusion_category.to_numpy().sum() == 8
    assert m.confusion_tier.loc["strong", "cheap"] == 1 and m.confusion_tier.loc["strong", "medium"] == 1
    assert m.confusion_tier.loc["cheap", "strong"] == 1
    np.testing.assert_allclose(row_normalize(m.confusion_tier).sum(axis=1), 1.0)


def test_per_category_lists_every_category_with_its_tier(m, taxonomy):
    pc = m.per_category
    assert list(pc.index) == list(taxonomy.categories) and pc.loc["creative", "n"] == 0
    assert pc.loc["coding", "accuracy"] == pytest.approx(0.5) and pc.loc["coding", "downgrade_rate"] == pytest.approx(0.5)
    assert pc.loc["analysis", "tier_accuracy"] == 1.0 and pc.loc["analysis", "accuracy"] == 0.0


def test_costliest_confusions_are_ordered_by_cost_then_count(m, taxonomy):
    c = m.costliest
    cost = taxonomy.cost_matrix()
    assert set(c["direction"]) == {"downgrade", "upgrade"}
    assert list(c["cost"]) == sorted(c["cost"], reverse=True)
    # strong -> cheap is the most expensive cell of the taxonomy's cost matrix
    assert (c.iloc[0]["true_tier"], c.iloc[0]["predicted_tier"]) == ("strong", "cheap")
    assert c.iloc[0]["cost"] == pytest.approx(cost[2, 0])
    assert "analysis" not in set(c["true"])  # a same-tier confusion costs nothing and is not listed


def test_an_accepted_alternative_counts_as_correct(taxonomy):
    true = ["simple_lookup", "analysis", "casual"]
    pred = ["research_lookup", "research_lookup", "coding"]
    plain = compute_metrics(true, pred, taxonomy)
    alt = compute_metrics(true, pred, taxonomy, alt=["research_lookup", None, "simple_lookup"])
    assert plain.category_accuracy == 0 and plain.upgrade_rate == pytest.approx(2 / 3)
    # the first prediction equals its alternative: correct at both levels; the others are unchanged
    assert alt.category_accuracy == pytest.approx(1 / 3) and alt.tier_accuracy == pytest.approx(2 / 3)
    assert alt.upgrade_rate == pytest.approx(1 / 3)
    assert alt.confusion_category.loc["research_lookup", "research_lookup"] == 1


def test_empty_or_missing_alternatives_change_nothing(taxonomy):
    a = compute_metrics(TRUE, PRED, taxonomy, alt=[""] * len(TRUE)).headline()
    assert a == compute_metrics(TRUE, PRED, taxonomy).headline()


def test_groups_break_accuracy_down(m):
    g = m.by_group["lang"]
    assert set(g.index) == {"en", "de"} and g["n"].sum() == 8
    assert g.loc["de", "tier_accuracy"] == pytest.approx(2 / 3)


def test_to_dict_and_format_carry_every_figure(m):
    d = m.to_dict()
    assert {"per_category", "confusion_category", "confusion_tier", "costliest", "by_group"} <= set(d)
    assert pd.Series([r["count"] for r in d["costliest"]]).sum() == 4
    text = format_metrics(m, title="T")
    assert text.startswith("T") and "tier accuracy  50.0%" in text and "(downgrade)" in text
