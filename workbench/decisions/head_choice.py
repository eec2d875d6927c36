"""Choosing the router head by evidence: every candidate on the same folds, judged at the default operating point.

The candidates (:data:`workbench.config.HEAD_CANDIDATES`: the k-NN vote,
logistic regression, their blend, and a bag of small networks blended with
the vote) get out-of-fold class probabilities
on the same stratified folds (:func:`workbench.analysis.heads.out_of_fold_shares`).
Each one's operating point is fitted for the export's targets (by default:
abstain on at most 10% of traffic), and the head with the highest
out-of-fold tier accuracy *at that point* wins. Ties go to fewer downgrades,
then to the earlier candidate (the k-NN vote first: nothing to train). Two
heads tie when their difference is within one paired standard error,
``sqrt(b + c) / n`` with ``b`` and ``c`` the messages only one of them routes
right (McNemar's statistic): on 2,400 messages a one-message lead is noise,
not evidence.

Whatever the head, the router still finds and returns each message's nearest
neighbours, so every decision stays explainable by their ids and labels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import config as _config
from ..analysis.heads import out_of_fold_shares
from .operating_point import paired_standard_error
from .out_of_sample import apply_policy, fit_default_point, from_shares
from .targets import HeadParams, Targets

log = logging.getLogger(__name__)

__all__ = ["HeadChoice", "choose_head", "paired_standard_error"]


@dataclass
class HeadChoice:
    """Every candidate head on the same folds, and the winner."""

    best: str
    table: object         # pandas.DataFrame, one row per head, best first
    oos: dict             # head -> OutOfSample (out-of-fold)
    points: dict          # head -> OperatingPoint at the targets (None without targets)
    folds: str            # e.g. "stratified 10-fold, seed 0"

    def summary(self) -> str:
        """One honest sentence: which head wins and by how much."""
        t = self.table.set_index("head")
        best, runner = t.index[0], (t.index[1] if len(t) > 1 else None)
        a = t.loc[best, "point_tier_accuracy"]
        line = (f"head {best}: out-of-fold tier accuracy {100 * a:.1f}% at the default operating point "
                f"({100 * t.loc[best, 'tier_accuracy']:.1f}% without abstaining, {self.folds})")
        if runner is not None:
            tied = bool(t.loc[runner, "tied_with_best"])
            line += (f"; {runner} {100 * t.loc[runner, 'point_tier_accuracy']:.1f}%"
                     + (" is within one paired standard error, a tie, and has more downgrades" if tied else ""))
        return line + "."


def _correct_at_point(oos, labels, taxonomy, point):
    """Per message: routed to the right tier, or abstained (the categorizer handles it), at ``point``."""
    rank = taxonomy.category_tier_rank
    true = rank[np.asarray(labels)]
    if point is None:
        return rank[oos.pred] == true
    routed, abstain = apply_policy(oos, taxonomy, point.policy)
    return abstain | (routed == true)


def _row(head, oos, labels, taxonomy, point):
    rank = taxonomy.category_tier_rank
    y = np.asarray(labels)
    true, routed = rank[y], rank[oos.pred]
    per_cat = [float(np.mean(routed[y == i] == true[y == i])) for i in range(len(taxonomy.categories))
               if (y == i).any()]
    cats = [c for i, c in enumerate(taxonomy.categories) if (y == i).any()]
    row = {"head": head, "tier_accuracy": float(np.mean(routed == true)),
           "category_accuracy": float(np.mean(oos.pred == y)),
           "downgrade_rate": float(np.mean(routed < true)), "upgrade_rate": float(np.mean(routed > true)),
           "min_category_tier_accuracy": min(per_cat), "worst_category": cats[int(np.argmin(per_cat))]}
    if point is None:
        row.update(point_tier_accuracy=row["tier_accuracy"], point_downgrade_rate=row["downgrade_rate"],
                   point_abstain_rate=0.0, point_answered_tier_accuracy=row["tier_accuracy"])
    else:
        row.update(point_tier_accuracy=point.tier_accuracy, point_downgrade_rate=point.downgrade_rate,
                   point_abstain_rate=point.abstain_rate, point_answered_tier_accuracy=point.answered_tier_accuracy)
    return row


def choose_head(x, labels, taxonomy, config, *, candidates=_config.HEAD_CANDIDATES, targets=None,
                params=None) -> HeadChoice:
    """Compare ``candidates`` on the same folds and pick the best at the operating point of the targets.

    Parameters
    ----------
    x, labels, taxonomy, config
        The pool's vectors, category indices, taxonomy and k-NN configuration.
    candidates : sequence of head names
    targets : Targets, optional
        The operating point each head is judged at (see
        :func:`~workbench.decisions.out_of_sample.fit_default_point`; default: the project's); with no
        target, heads are judged by plain voting.
    params : HeadParams, optional
        Folds and head parameters (default: the project's).

    Returns
    -------
    HeadChoice
    """
    import pandas as pd

    targets = Targets() if targets is None else targets
    params = HeadParams() if params is None else params
    shares = out_of_fold_shares(x, labels, taxonomy, config, heads=tuple(candidates), n_splits=params.n_splits,
                                **params.fit_kwargs())
    oos, points, rows = {}, {}, []
    for head in candidates:
        oos[head] = from_shares(head, shares[head], taxonomy)
        # judged on the pool's own mix: the head choice does not take a traffic mix
        points[head] = fit_default_point(oos[head], labels, taxonomy, targets.with_(traffic_mix=None)) \
            if targets.fits else None
        rows.append(_row(head, oos[head], labels, taxonomy, points[head]))
        log.info("head %s: out-of-fold tier accuracy %.4f", head, rows[-1]["point_tier_accuracy"])
    table = _ranked(pd.DataFrame(rows), {h: _correct_at_point(oos[h], labels, taxonomy, points[h]) for h in candidates})
    return HeadChoice(str(table.loc[0, "head"]), table, oos, points,
                      f"stratified {params.n_splits}-fold, seed {params.seed}")


def _ranked(table, correct):
    """``table`` with each head's lead standard error and tie flag, best first.

    Tied heads first, fewer downgrades first among them; then the rest by accuracy; candidate order last.
    """
    top = table.loc[table["point_tier_accuracy"].idxmax(), "head"]
    table["lead_se"] = [paired_standard_error(correct[top], correct[h]) for h in table["head"]]
    table["tied_with_best"] = (table["point_tier_accuracy"].max() - table["point_tier_accuracy"]) <= table["lead_se"] + 1e-12
    order = sorted(range(len(table)), key=lambda i: (
        (0, table.loc[i, "point_downgrade_rate"]) if table.loc[i, "tied_with_best"]
        else (1, -table.loc[i, "point_tier_accuracy"]), i))
    return table.iloc[order].reset_index(drop=True)
