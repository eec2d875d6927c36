"""Compare the k-NN router with the label source: shadow logs, the outage fallback, and generated prompts.

Shadow log (JSONL, one routed message per line, the shape a router running
in shadow mode writes next to the live categorizer)::

    {"id": "...", "ts": "2026-11-20T09:14:03Z", "text": "...", "lang": "en",
     "label_category": "coding", "label_source": "llama-3.1-8b-instant",
     "routed_category": "analysis", "routed_tier": "medium", "confidence": 0.61}

``label_category`` (what the live categorizer said) and ``text`` are
required; ``routed_category`` is what the shadow router decided and may be
absent when the log is re-routed with a pool. Generated-prompt audit
(JSONL): ``text``, ``intended_category`` (what the prompt was written for)
and ``category`` (what the label source assigned).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import config as _config
from ..analysis.metrics import Metrics, compute_metrics, format_metrics
from ..core.text import has_visible_text
from ..errors import ConfigError, DataError
from ..io import read_jsonl

log = logging.getLogger(__name__)

__all__ = ["ShadowReport", "read_shadow_log", "compare_shadow", "outage_comparison", "read_audit",
           "audit_generated", "format_shadow", "format_audit"]


def _read(path, required, taxonomy, label_keys):
    rows = []
    for n, obj in read_jsonl(path):
        for key in required:
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise DataError(path, n, f"missing or empty {key!r}")
        if not has_visible_text(obj["text"]):
            raise DataError(path, n, "'text' has no visible characters")
        for key in label_keys:
            value = obj.get(key)
            if value is not None and (not isinstance(value, str) or value not in taxonomy.tier_map):
                raise DataError(path, n, f"unknown {key} {value!r:.60} (known: {', '.join(taxonomy.categories)})")
        rows.append(dict(obj, line=n))
    if not rows:
        raise DataError(path, None, "no messages")
    return pd.DataFrame(rows)


def read_shadow_log(path, taxonomy):
    """A shadow log as a DataFrame (validated; errors name the file and the line)."""
    return _read(path, ("text", "label_category"), taxonomy, ("label_category", "routed_category"))


def read_audit(path, taxonomy):
    """A generated-prompt audit file as a DataFrame."""
    return _read(path, ("text", "intended_category", "category"), taxonomy, ("intended_category", "category"))


@dataclass
class ShadowReport:
    """The router against the label source on a shadow log."""

    metrics: Metrics             # label source = truth, router = prediction
    disagreements: pd.DataFrame  # cross-tier disagreements, downgrades first
    outage: pd.DataFrame         # rows: k-NN router, static fallback tier

    def headline(self) -> dict:
        m = self.metrics
        out = {"n": m.n, "category_agreement": m.category_accuracy, "tier_agreement": m.tier_accuracy,
               "upgrade_rate": m.upgrade_rate, "downgrade_rate": m.downgrade_rate}
        fb = self.outage.iloc[1]
        out["fallback_tier_accuracy"] = float(fb["tier_accuracy"])
        out["fallback_tier"] = str(fb.name).split()[-1]
        return out


def outage_comparison(label_categories, routed_categories, taxonomy, *, default_tier=_config.OUTAGE_TIER):
    """Tier accuracy of the k-NN router versus sending everything to one static tier.

    During an outage of the label source the live system fell back to one
    tier for every message; this is what that costs next to the router.

    Returns
    -------
    pandas.DataFrame indexed by ``k-NN router`` and ``static <tier>``, with
    ``tier_accuracy``, ``downgrade_rate``, ``upgrade_rate``.
    """
    if default_tier not in taxonomy.tiers:
        raise ConfigError(f"default_tier must be one of {list(taxonomy.tiers)}; got {default_tier!r}")
    true = np.array([taxonomy.tier_rank(taxonomy.tier_map[c]) for c in label_categories])
    rows = {}
    routed = np.array([taxonomy.tier_rank(taxonomy.tier_map[c]) for c in routed_categories])
    static = np.full(len(true), taxonomy.tier_rank(default_tier))
    for name, pred in (("k-NN router", routed), (f"static {default_tier}", static)):
        rows[name] = {"tier_accuracy": float((pred == true).mean()), "downgrade_rate": float((pred < true).mean()),
                      "upgrade_rate": float((pred > true).mean())}
    return pd.DataFrame.from_dict(rows, orient="index")


def compare_shadow(log_frame, taxonomy, *, routed=None, default_tier=_config.OUTAGE_TIER):
    """Agreement of the router with the label source on a shadow log.

    Parameters
    ----------
    log_frame : DataFrame from :func:`read_shadow_log`
    taxonomy : Taxonomy
    routed : sequence of category names, optional
        The router's categories (e.g. from re-routing the log with a pool);
        default the log's own ``routed_category``.
    default_tier : str
        The static fallback tier of the outage comparison.
    """
    if routed is None:
        if "routed_category" not in log_frame or log_frame["routed_category"].isna().any():
            missing = log_frame.loc[log_frame.get("routed_category", pd.Series(index=log_frame.index)).isna(), "line"]
            raise ConfigError(f"the log has no routed_category on line(s) {list(missing)[:5]}: route it with a pool")
        routed = log_frame["routed_category"]
    routed = [str(c) for c in routed]
    if len(routed) != len(log_frame):
        raise ConfigError(f"routed must have one category per log line ({len(log_frame)}); got {len(routed)}")
    truth = list(log_frame["label_category"])
    groups = {"lang": log_frame["lang"].fillna("?").astype(str)} if "lang" in log_frame else None
    m = compute_metrics(truth, routed, taxonomy, groups=groups)
    tier = taxonomy.tier_map
    rank = taxonomy.tier_rank
    dis = pd.DataFrame({"id": log_frame.get("id", pd.Series(log_frame.index)).astype(str), "text": log_frame["text"],
                        "label_category": truth, "routed_category": routed,
                        "label_tier": [tier[c] for c in truth], "routed_tier": [tier[c] for c in routed]})
    delta = np.array([rank(tier[r]) - rank(tier[t]) for t, r in zip(truth, routed)])
    dis["direction"] = np.where(delta < 0, "downgrade", "upgrade")
    dis = dis[delta != 0].assign(_d=lambda d: d["direction"] != "downgrade").sort_values(["_d", "label_category"],
                                                                                     kind="stable")
    outage = outage_comparison(truth, routed, taxonomy, default_tier=default_tier)
    return ShadowReport(m, dis.drop(columns="_d").reset_index(drop=True), outage)


@dataclass
class Audit:
    """Intended against assigned categories of generated prompts.

    The label source's category is the one to keep: this shows where it
    draws the line, not a reason to override it.
    """

    n: int
    matrix: pd.DataFrame     # counts, rows: intended, columns: assigned by the label source
    agreement: float         # share where they match
    tier_agreement: float
    boundary: pd.DataFrame   # rows where they differ, cross-tier ones first

    def headline(self) -> dict:
        return {"n": self.n, "agreement": self.agreement, "tier_agreement": self.tier_agreement}


def audit_generated(frame, taxonomy) -> Audit:
    """Intended × assigned categories of generated prompts, with the boundary examples."""
    cats = list(taxonomy.categories)
    intended, assigned = frame["intended_category"], frame["category"]
    matrix = pd.crosstab(pd.Categorical(intended, cats), pd.Categorical(assigned, cats), dropna=False)
    matrix.index.name, matrix.columns.name = "intended", "assigned"
    tier = taxonomy.tier_map
    same_tier = np.array([tier[a] == tier[b] for a, b in zip(intended, assigned)])
    differ = (intended != assigned).to_numpy()
    boundary = pd.DataFrame({"text": frame["text"], "intended_category": intended, "category": assigned,
                             "cross_tier": ~same_tier})[differ]
    boundary = boundary.sort_values("cross_tier", ascending=False, kind="stable").reset_index(drop=True)
    return Audit(len(frame), matrix, float((~differ).mean()), float(same_tier.mean()), boundary)


def _pct(v):
    return f"{100 * v:5.1f}%"


def format_shadow(report: ShadowReport, *, max_rows=20) -> str:
    """Plain-text shadow comparison."""
    out = [format_metrics(report.metrics, title="== router vs label source (accuracy = agreement with the label "
                                                "source; confusion rows: label source) ==")]
    out.append("\n== outage comparison: every message on one static tier vs the k-NN router ==")
    out.append(report.outage.to_string(float_format=lambda v: f"{100 * v:.1f}%"))
    d = report.disagreements
    out.append(f"\n== cross-tier disagreements: {len(d)} ==")
    for _, r in d.head(max_rows).iterrows():
        text = r["text"].replace("\n", " ")
        out.append(f"  [{r['direction']}] {r['label_category']} -> {r['routed_category']}: "
                   f"{text[:90]}{'...' if len(text) > 90 else ''}")
    return "\n".join(out)


def format_audit(audit: Audit, *, max_rows=20) -> str:
    """Plain-text generated-prompt audit."""
    out = [f"generated prompts {audit.n}: label source agrees with the intended category "
           f"{_pct(audit.agreement)} (tier {_pct(audit.tier_agreement)})",
           "\nintended (rows) x assigned by the label source (columns):", audit.matrix.to_string(),
           f"\nboundary examples ({len(audit.boundary)}; the label source's category is kept):"]
    for _, r in audit.boundary.head(max_rows).iterrows():
        out.append(f"  {r['intended_category']} -> {r['category']}{' (cross-tier)' if r['cross_tier'] else ''}: "
                   f"{r['text'][:90]}")
    return "\n".join(out)
