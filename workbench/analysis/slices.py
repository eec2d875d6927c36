"""Slices of the pool (a language, a source) that route markedly worse than the pool as a whole.

Leave-one-out tier accuracy per slice (``Metrics.by_group``) against the
pool's: a slice with at least ``min_count`` messages whose tier accuracy is
more than ``max_gap`` under the pool's is flagged, on the index page of a
report (:mod:`workbench.report.index`) and in ``03_evaluate``.
"""
from __future__ import annotations

from .. import config as _config

__all__ = ["slice_table", "weak_slices", "describe_weak_slices", "slice_sentences", "TITLE"]

SLICE_FIELDS = ("lang", "source")
TITLE = "Languages and sources with 30+ messages: leave-one-out tier accuracy against the pool's"


def slice_table(metrics, *, fields=SLICE_FIELDS, min_count=_config.SLICE_MIN_COUNT, max_gap=_config.SLICE_MAX_GAP):
    """Every slice with at least ``min_count`` messages: field, value, n, tier accuracy, gap to the pool, flagged.

    Parameters
    ----------
    metrics : workbench.analysis.metrics.Metrics
        With ``by_group`` for ``fields`` (leave-one-out of :func:`evaluate_pool`).
    """
    import pandas as pd

    rows = []
    for field in fields:
        table = metrics.by_group.get(field)
        if table is None:
            continue
        for value, rec in table.iterrows():
            if rec["n"] >= min_count:
                gap = metrics.tier_accuracy - rec["tier_accuracy"]
                rows.append({"field": field, "value": str(value), "n": int(rec["n"]),
                             "tier_accuracy": round(float(rec["tier_accuracy"]), 4),
                             "pool_tier_accuracy": round(float(metrics.tier_accuracy), 4),
                             "gap_points": round(100 * float(gap), 1), "flagged": bool(gap > max_gap)})
    out = pd.DataFrame(rows, columns=["field", "value", "n", "tier_accuracy", "pool_tier_accuracy", "gap_points",
                                      "flagged"])
    return out.sort_values(["flagged", "gap_points"], ascending=False, kind="stable").reset_index(drop=True)


def weak_slices(table):
    """The flagged rows of a :func:`slice_table` (as records)."""
    return [r for r in table.to_dict("records") if r["flagged"]]


def describe_weak_slices(table, *, max_gap=_config.SLICE_MAX_GAP):
    """What a notebook prints of a :func:`slice_table`: one line per flagged slice, or that none is flagged."""
    lines = slice_sentences(weak_slices(table), max_gap=max_gap)
    return "\n".join(lines) or (f"no language or source with {_config.SLICE_MIN_COUNT}+ messages is more than "
                                f"{100 * max_gap:.0f} points under the pool")


def slice_sentences(records, *, max_gap=_config.SLICE_MAX_GAP):
    """One sentence per flagged slice (empty list when none)."""
    names = {"lang": "language", "source": "source"}
    return [f"{names.get(r['field'], r['field'])} {r['value']} ({r['n']} messages): leave-one-out tier accuracy "
            f"{100 * r['tier_accuracy']:.1f}%, {r['gap_points']:.1f} points under the pool's "
            f"{100 * r['pool_tier_accuracy']:.1f}% (more than {100 * max_gap:.0f})" for r in records]
