"""Weak slices: languages and sources with 30+ messages more than 10 points under the pool, flagged on the index."""
from types import SimpleNamespace

import pandas as pd

from workbench.analysis import slices


def metrics(pool_tier, groups):
    return SimpleNamespace(tier_accuracy=pool_tier, by_group={
        field: pd.DataFrame(rows, columns=["value", "n", "tier_accuracy"]).set_index("value")
        for field, rows in groups.items()})


M = metrics(0.87, {"lang": [("en", 1200, 0.90), ("hi", 51, 0.47), ("vi", 63, 0.56), ("xx", 29, 0.10),
                            ("fr", 40, 0.771)],
                   "source": [("generated", 2000, 0.88), ("style-terse", 35, 0.70)]})


def test_flags_each_big_enough_slice_more_than_10_points_under_the_pool():
    table = slices.slice_table(M)
    flagged = {(r["field"], r["value"]) for r in slices.weak_slices(table)}
    assert flagged == {("lang", "hi"), ("lang", "vi"), ("source", "style-terse")}
    assert "xx" not in set(table["value"])  # under 30 messages: not judged
    assert not table.set_index("value").loc["fr", "flagged"]  # 9.9 points under: not flagged
    text = slices.describe_weak_slices(table)
    assert "language hi (51 messages): leave-one-out tier accuracy 47.0%, 40.0 points under the pool's 87.0%" in text


def test_says_so_when_no_slice_is_flagged():
    table = slices.slice_table(metrics(0.87, {"lang": [("en", 100, 0.86)]}))
    assert slices.weak_slices(table) == [] and slices.describe_weak_slices(table).startswith("no language or source")


def test_the_index_page_names_the_flagged_slices(tmp_path):
    from workbench.report import record
    from workbench.report.index import write_index

    run = tmp_path / "2026-12-06"
    run.mkdir()
    record.record_metrics(run, "evaluate", {"tier_accuracy": 0.87})
    record.record_table(run, "03_slices", slices.slice_table(M), title=slices.TITLE)
    page = write_index(run, previous=False).read_text(encoding="utf-8")
    assert "Slices more than 10 points under the pool" in page
    assert "language hi (51 messages)" in page and "language vi (63 messages)" in page and "style-terse" in page
    assert "language fr" not in page.split("Slices more than")[1].split("</div>")[0]
