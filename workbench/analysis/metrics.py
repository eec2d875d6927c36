"""Routing metrics from true and predicted categories: category and tier level.

Tier accuracy is the number that counts: confusing two categories of one
tier costs nothing. Tier errors have a direction: a *downgrade* (predicted
tier cheaper than the label's) is visible to users, an *upgrade* costs money.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Metrics", "compute_metrics", "format_metrics", "row_normalize"]


def row_normalize(confusion: pd.DataFrame) -> pd.DataFrame:
    """Confusion counts -> row shares (each true label's row sums to 1)."""
    totals = confusion.sum(axis=1).replace(0, np.nan)
    return confusion.div(totals, axis=0).fillna(0.0)


@dataclass
class Metrics:
    """Routing metrics of one set of predictions. Rates are shares of all messages."""

    n: int
    category_accuracy: float
    tier_accuracy: float
    upgrade_rate: float
    downgrade_rate: float
    per_category: pd.DataFrame
    confusion_category: pd.DataFrame
    confusion_tier: pd.DataFrame
    costliest: pd.DataFrame
    by_group: dict

    def headline(self) -> dict:
        return {"n": self.n, "category_accuracy": self.category_accuracy, "tier_accuracy": self.tier_accuracy,
                "upgrade_rate": self.upgrade_rate, "downgrade_rate": self.downgrade_rate}

    def to_dict(self) -> dict:
        """JSON-ready form of every figure."""
        return dict(
            self.headline(),
            per_category=self.per_category.reset_index().to_dict(orient="records"),
            confusion_category=self.confusion_category.to_dict(orient="index"),
            confusion_tier=self.confusion_tier.to_dict(orient="index"),
            costliest=self.costliest.to_dict(orient="records"),
            by_group={k: v.reset_index().to_dict(orient="records") for k, v in self.by_group.items()},
        )


def _accuracy_table(key, correct, tier_correct, down, up):
    df = pd.DataFrame({"key": key, "correct": correct, "tier_correct": tier_correct, "down": down, "up": up})
    g = df.groupby("key", sort=True)
    return pd.DataFrame({"n": g.size(), "accuracy": g["correct"].mean(), "tier_accuracy": g["tier_correct"].mean(),
                         "downgrade_rate": g["down"].mean(), "upgrade_rate": g["up"].mean()})


def compute_metrics(true, pred, taxonomy, *, alt=None, groups=None) -> Metrics:
    """Category- and tier-level metrics.

    Parameters
    ----------
    true, pred : sequences of category names
    taxonomy : Taxonomy
    alt : sequence of category names or None, optional
        An accepted second answer per message (ambiguous external labels): a
        prediction equal to it counts as correct.
    groups : dict of name -> sequence, optional
        Break accuracy down by these keys (e.g. ``{"lang": ..., "source": ...}``).
    """
    true = np.asarray(list(true), dtype=object)
    pred = np.asarray(list(pred), dtype=object)
    if alt is not None:
        alt = np.asarray([a if isinstance(a, str) and a else None for a in alt], dtype=object)
        true = np.where((alt != None) & (pred == alt), alt, true)  # noqa: E711 - elementwise
    n = len(true)
    cats, tiers = list(taxonomy.categories), list(taxonomy.tiers)
    rank = {t: i for i, t in enumerate(tiers)}
    t_tier = np.array([taxonomy.tier_map[c] for c in true], dtype=object)
    p_tier = np.array([taxonomy.tier_map[c] for c in pred], dtype=object)
    t_rank = np.array([rank[t] for t in t_tier])
    p_rank = np.array([rank[t] for t in p_tier])
    correct = true == pred
    tier_correct = t_rank == p_rank
    down, up = p_rank < t_rank, p_rank > t_rank

    conf_cat = pd.crosstab(pd.Categorical(true, cats), pd.Categorical(pred, cats), dropna=False)
    conf_cat.index.name, conf_cat.columns.name = "true", "predicted"
    conf_tier = pd.crosstab(pd.Categorical(t_tier, tiers), pd.Categorical(p_tier, tiers), dropna=False)
    conf_tier.index.name, conf_tier.columns.name = "true", "predicted"

    per_cat = _accuracy_table(true, correct, tier_correct, down, up).reindex(cats)
    per_cat["n"] = per_cat["n"].fillna(0).astype(int)
    per_cat.insert(0, "tier", [taxonomy.tier_map[c] for c in cats])
    per_cat.index.name = "category"

    rows = []
    for a in cats:
        for b in cats:
            cnt = int(conf_cat.loc[a, b])
            if cnt and taxonomy.tier_map[a] != taxonomy.tier_map[b]:
                ra, rb = rank[taxonomy.tier_map[a]], rank[taxonomy.tier_map[b]]
                rows.append({"true": a, "predicted": b, "count": cnt, "true_tier": taxonomy.tier_map[a],
                             "predicted_tier": taxonomy.tier_map[b], "direction": "downgrade" if rb < ra else "upgrade",
                             "cost": cnt * float(taxonomy.cost_matrix()[ra, rb])})
    costliest = pd.DataFrame(rows, columns=["true", "predicted", "count", "true_tier", "predicted_tier", "direction", "cost"])
    costliest = costliest.sort_values(["cost", "count"], ascending=False, kind="stable").reset_index(drop=True)

    by_group = {name: _accuracy_table(np.asarray(list(vals), dtype=object).astype(str), correct, tier_correct, down, up)
                for name, vals in (groups or {}).items()}
    mean = (lambda a: float(a.mean()) if n else float("nan"))
    return Metrics(n, mean(correct), mean(tier_correct), mean(up), mean(down), per_cat, conf_cat, conf_tier,
                   costliest, by_group)


def format_metrics(m: Metrics, *, title="") -> str:
    """A readable plain-text table of the metrics."""
    pct = lambda v: f"{100 * v:5.1f}%"  # noqa: E731
    out = [title] if title else []
    out.append(f"messages {m.n}   tier accuracy {pct(m.tier_accuracy)}   category accuracy {pct(m.category_accuracy)}   "
               f"downgrades {pct(m.downgrade_rate)}   upgrades {pct(m.upgrade_rate)}")
    out.append("\nper category:")
    out.append(f"  {'category':<16} {'tier':<7} {'n':>5} {'acc':>7} {'tier acc':>9} {'down':>7} {'up':>7}")
    for cat, r in m.per_category.iterrows():
        if r["n"]:
            out.append(f"  {cat:<16} {r['tier']:<7} {int(r['n']):>5} {pct(r['accuracy']):>7} {pct(r['tier_accuracy']):>9} "
                       f"{pct(r['downgrade_rate']):>7} {pct(r['upgrade_rate']):>7}")
    out.append("\ntier confusion (rows: label, columns: routed):")
    ct = m.confusion_tier
    out.append("  " + " " * 8 + "".join(f"{c:>8}" for c in ct.columns))
    for t, r in ct.iterrows():
        out.append(f"  {t:<8}" + "".join(f"{int(v):>8}" for v in r))
    if len(m.costliest):
        out.append("\ncostliest cross-tier confusions:")
        for _, r in m.costliest.head(6).iterrows():
            out.append(f"  {r['true']:>16} -> {r['predicted']:<16} {int(r['count']):>4}  ({r['direction']})")
    for name, tab in m.by_group.items():
        out.append(f"\nby {name}:")
        for key, r in tab.sort_values("n", ascending=False).iterrows():
            out.append(f"  {key:<16} {int(r['n']):>5} tier acc {pct(r['tier_accuracy'])}  acc {pct(r['accuracy'])}")
    return "\n".join(out)
