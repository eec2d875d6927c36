"""Leave-one-out k-NN evaluation of a pool, and the configuration sweep.

One similarity matrix per block of rows with the diagonal masked, top-k by
``argpartition``: the whole pool is evaluated without refitting anything.
*Leave-duplicate-group-out* masks each row's near-duplicate group as well;
the accuracy gap between the two is the inflation near-duplicates cause.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from .knn import VOTE_RULES, center_vectors, check_params, decide, top_k, vote

#: k values the sweep tries by default.
SWEEP_KS = (1, 3, 5, 7, 9, 15, 21, 31, 45)

__all__ = ["SWEEP_KS", "KNNConfig", "Predictions", "loo_neighbors", "loo_predict", "sweep", "evaluate_pool"]


@dataclass(frozen=True)
class KNNConfig:
    """k-NN voting parameters (what a pool.npz records for its router)."""

    k: int = 7
    vote: str = "distance"
    temperature: float = 0.05
    center: bool = True

    def __post_init__(self):
        check_params(self.k, self.vote, self.temperature)

    def to_dict(self):
        return asdict(self)


@dataclass
class Predictions:
    """Out-of-sample predictions, one row per pool message."""

    pred: np.ndarray        # predicted category index
    confidence: np.ndarray  # vote share of the winner
    margin: np.ndarray      # winner's share minus the runner-up's
    shares: np.ndarray      # (n, n_categories) vote shares
    neighbors: np.ndarray   # (n, k) pool row indices, most similar first
    similarities: np.ndarray


def _prepare(x, center):
    x = np.asarray(x, np.float32)
    return center_vectors(x, x.mean(axis=0)) if center else x


def loo_neighbors(x, k, *, groups=None, center=False):
    """Top-``k`` neighbours of every row among the *other* rows.

    Parameters
    ----------
    x : (n, d) float32, L2-normalised rows
    k : int
    groups : int array (n,), optional
        Group label per row; a row's whole group is left out with it
        (leave-duplicate-group-out). Default: only the row itself.
    center : bool
        Mean-centre (and re-normalise) the vectors first.
    """
    x = _prepare(x, center)
    n = len(x)
    cols = np.arange(n)
    if groups is None:
        exclude = lambda rows: rows[:, None] == cols[None, :]  # noqa: E731
    else:
        g = np.asarray(groups)
        exclude = lambda rows: g[rows][:, None] == g[None, :]  # noqa: E731
    return top_k(x, x, k, exclude=exclude)


def _predict_from(idx, sim, labels, taxonomy, k, vote_rule, temperature):
    labels = np.asarray(labels)
    shares = vote(labels[idx[:, :k]], sim[:, :k], len(taxonomy.categories), rule=vote_rule, temperature=temperature)
    pred, conf, margin = decide(shares, taxonomy.category_tier_rank)
    return Predictions(pred, conf, margin, shares, idx[:, :k], sim[:, :k])


def loo_predict(x, labels, taxonomy, config=KNNConfig(), *, groups=None):
    """Leave-one-out (or leave-group-out) predictions for every row.

    ``labels`` are category indices in ``taxonomy.categories`` order.
    """
    idx, sim = loo_neighbors(x, config.k, groups=groups, center=config.center)
    return _predict_from(idx, sim, labels, taxonomy, config.k, config.vote, config.temperature)


def sweep(x, labels, taxonomy, *, ks=SWEEP_KS, votes=VOTE_RULES, centers=(False, True),
          temperature=0.05, groups=None):
    """Leave-one-out tier/category accuracy over k x vote rule x centering.

    Neighbours are searched once per centering (at the largest k) and every
    smaller k reuses them. Rows are sorted best first: highest tier
    accuracy, then lowest downgrade rate, then smaller k.

    Returns
    -------
    pandas.DataFrame with ``k, vote, center, tier_accuracy,
    category_accuracy, downgrade_rate, upgrade_rate``.
    """
    import pandas as pd

    labels = np.asarray(labels)
    trank = taxonomy.category_tier_rank
    true_rank = trank[labels]
    rows = []
    for center in centers:
        idx, sim = loo_neighbors(x, max(ks), groups=groups, center=center)
        for k, rule in itertools.product(ks, votes):
            p = _predict_from(idx, sim, labels, taxonomy, k, rule, temperature)
            pr = trank[p.pred]
            rows.append({"k": int(k), "vote": rule, "center": bool(center),
                         "tier_accuracy": float((pr == true_rank).mean()),
                         "category_accuracy": float((p.pred == labels).mean()),
                         "downgrade_rate": float((pr < true_rank).mean()),
                         "upgrade_rate": float((pr > true_rank).mean())})
    table = pd.DataFrame(rows)
    table["_neg"] = -table["tier_accuracy"].round(12)
    table = table.sort_values(["_neg", "downgrade_rate", "k"], kind="stable").drop(columns="_neg")
    return table.reset_index(drop=True)


def evaluate_pool(frame, x, taxonomy, config=KNNConfig(), *, dup_threshold=0.95, group_by=("lang", "source")):
    """Leave-one-out and leave-duplicate-group-out metrics of a pool.

    Returns
    -------
    dict with ``loo`` and ``ldgo`` (:class:`~workbench.metrics.Metrics`),
    ``predictions`` (LOO :class:`Predictions`), ``groups`` (duplicate group
    per row), ``inflation`` (LOO minus LDGO tier accuracy) and ``config``.
    """
    from .duplicates import duplicate_groups
    from .metrics import compute_metrics

    labels = taxonomy.category_index(frame["category"])
    cats = np.array(taxonomy.categories, dtype=object)
    groups_by = {g: frame[g].astype(str).to_numpy() for g in group_by if g in frame}
    loo = loo_predict(x, labels, taxonomy, config)
    dup = duplicate_groups(x, dup_threshold)
    ldgo = loo_predict(x, labels, taxonomy, config, groups=dup)
    m_loo = compute_metrics(frame["category"], cats[loo.pred], taxonomy, groups=groups_by)
    m_ldgo = compute_metrics(frame["category"], cats[ldgo.pred], taxonomy, groups=groups_by)
    return {"config": config, "loo": m_loo, "ldgo": m_ldgo, "predictions": loo, "groups": dup,
            "inflation": m_loo.tier_accuracy - m_ldgo.tier_accuracy}
