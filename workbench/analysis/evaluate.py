"""Leave-one-out k-NN evaluation of a pool, the configuration sweep, and choosing a configuration.

One similarity matrix per block of rows with the diagonal masked, top-k by
``argpartition``: the whole pool is evaluated without refitting anything.
*Leave-duplicate-group-out* masks each row's near-duplicate group as well;
the accuracy gap between the two is the inflation near-duplicates cause.
Predictions go through :func:`workbench.core.knn.predict_from_neighbors`,
the router's own path. Exact search computes each pair of row blocks once
(:func:`workbench.core.search.self_top_k`); when the cost model
(:func:`workbench.core.search.choose_search`) finds an HNSW index cheaper,
the neighbours come from one, and the evaluation reports that search's
recall@k against exact search on a sample.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .. import config as _config
from ..errors import ConfigError
from ..core.knn import VOTE_RULES, KNNConfig, Prediction, center, predict_from_neighbors, top_k
from ..core.search import choose_search, self_top_k

__all__ = ["Evaluation", "loo_neighbors", "loo_predict", "ann_recall", "sweep", "evaluate_pool", "best_config",
           "choose_config"]


def _exclusion(n, groups):
    cols = np.arange(n)
    if groups is None:
        return lambda rows: rows[:, None] == cols[None, :]
    g = np.asarray(groups)
    return lambda rows: g[rows][:, None] == g[None, :]


def _uses_ann(x, ann):
    return choose_search(len(x), len(x), np.shape(x)[1], self_search=True, ann=ann) == "hnsw"


def loo_neighbors(x, k, *, groups=None, center_vectors=False, ann=None):
    """Top-``k`` neighbours of every row among the *other* rows.

    Parameters
    ----------
    x : (n, d) float32, L2-normalised rows
    k : int
    groups : int array (n,), optional
        Group label per row; a row's whole group is left out with it
        (leave-duplicate-group-out). Default: only the row itself.
    center_vectors : bool
        Mean-centre (and re-normalise) the vectors first.
    ann : bool, optional
        Search an HNSW index instead of every row (default: whichever
        :func:`workbench.core.search.choose_search` estimates cheaper).
    """
    x = center(x) if center_vectors else np.asarray(x, np.float32)
    if _uses_ann(x, ann):
        from ..core.ann import HNSWIndex, search_excluding_self

        return search_excluding_self(HNSWIndex.build(x), x, k, groups=groups)
    return self_top_k(x, k, groups=groups)


def ann_recall(x, idx, k, *, groups=None, center_vectors=False, sample=_config.ANN_RECALL_SAMPLE,
               seed=_config.SEED):
    """Recall@k of approximate leave-one-out neighbours ``idx`` against exact search, on a sample of rows."""
    x = center(x) if center_vectors else np.asarray(x, np.float32)
    rows = np.random.default_rng(seed).choice(len(x), min(sample, len(x)), replace=False)
    exclude = _exclusion(len(x), groups)
    exact, _ = top_k(x[rows], x, k, exclude=lambda r: exclude(rows[r]))
    return float(np.mean([len(set(a[:k]) & set(b)) / k for a, b in zip(idx[rows], exact)]))


def loo_predict(x, labels, taxonomy, config, *, groups=None, ann=None) -> Prediction:
    """Leave-one-out (or leave-group-out) predictions for every row.

    ``labels`` are category indices in ``taxonomy.categories`` order.
    """
    idx, sim = loo_neighbors(x, config.k, groups=groups, center_vectors=config.center, ann=ann)
    return predict_from_neighbors(idx, sim, labels, config, taxonomy.category_tier_rank)


def sweep(x, labels, taxonomy, *, ks=_config.SWEEP_KS, votes=VOTE_RULES, centers=(False, True),
          temperature=_config.TEMPERATURE, groups=None):
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
    for c in centers:
        idx, sim = loo_neighbors(x, max(ks), groups=groups, center_vectors=c)
        for k, rule in itertools.product(ks, votes):
            p = predict_from_neighbors(idx, sim, labels, KNNConfig(int(k), rule, temperature, bool(c)), trank)
            pr = trank[p.pred]
            rows.append({"k": int(k), "vote": rule, "center": bool(c),
                         "tier_accuracy": float((pr == true_rank).mean()),
                         "category_accuracy": float((p.pred == labels).mean()),
                         "downgrade_rate": float((pr < true_rank).mean()),
                         "upgrade_rate": float((pr > true_rank).mean())})
    table = pd.DataFrame(rows)
    table["_neg"] = -table["tier_accuracy"].round(12)
    table = table.sort_values(["_neg", "downgrade_rate", "k"], kind="stable").drop(columns="_neg")
    return table.reset_index(drop=True)


@dataclass
class Evaluation:
    """Leave-one-out and leave-duplicate-group-out results of one pool under one configuration."""

    config: KNNConfig
    loo: object               # Metrics (leave-one-out)
    ldgo: object              # Metrics (leave-duplicate-group-out)
    predictions: Prediction   # leave-one-out predictions (neighbours for examples and the review queue)
    groups: np.ndarray        # near-duplicate group per row
    dup_threshold: float
    ann_recall: float = None  # recall@k of the approximate leave-one-out search (None: exact search)

    @property
    def inflation(self) -> float:
        """LOO minus LDGO tier accuracy: the accuracy near-duplicates fake."""
        return self.loo.tier_accuracy - self.ldgo.tier_accuracy


def evaluate_pool(frame, x, taxonomy, config, *, dup_threshold=_config.DUP_THRESHOLD, group_by=("lang", "source")):
    """Leave-one-out and leave-duplicate-group-out metrics of a pool.

    Returns
    -------
    Evaluation
    """
    from ..dataset.duplicates import duplicate_groups
    from .metrics import compute_metrics

    labels = taxonomy.category_index(frame["category"])
    cats = np.array(taxonomy.categories, dtype=object)
    groups_by = {g: frame[g].astype(str).to_numpy() for g in group_by if g in frame}
    loo = loo_predict(x, labels, taxonomy, config)
    recall = ann_recall(x, loo.neighbors, config.k, center_vectors=config.center) if _uses_ann(x, None) else None
    dup = duplicate_groups(x, dup_threshold)
    ldgo = loo_predict(x, labels, taxonomy, config, groups=dup)
    m_loo = compute_metrics(frame["category"], cats[loo.pred], taxonomy, groups=groups_by)
    m_ldgo = compute_metrics(frame["category"], cats[ldgo.pred], taxonomy, groups=groups_by)
    return Evaluation(config, m_loo, m_ldgo, loo, dup, dup_threshold, recall)


def best_config(pool, *, temperature=_config.TEMPERATURE, **sweep_kw):
    """Sweep k x vote rule x centering on an EmbeddedPool; return ``(best KNNConfig, sweep table)``."""
    table = sweep(pool.vectors, pool.labels, pool.taxonomy, temperature=temperature, **sweep_kw)
    top = table.iloc[0]
    return KNNConfig(int(top["k"]), str(top["vote"]), temperature, bool(top["center"])), table


def choose_config(pool, *, k=None, vote=None, center=None, temperature=_config.TEMPERATURE, table=None):
    """The configuration the arguments fix, with the best of the sweep for what they leave open.

    Parameters
    ----------
    pool : EmbeddedPool
    k, vote, center : optional
        Fixed choices; ``None`` leaves a choice to the sweep.
    temperature : float
    table : pandas.DataFrame, optional
        A full sweep of this pool (from :func:`sweep`, best row first) to
        pick from instead of sweeping again.

    Returns
    -------
    ``(KNNConfig, sweep table)``; the table is None when nothing was left open.

    Raises
    ------
    ConfigError
        When ``k`` is not below the pool size (leave-one-out compares each
        message with the n - 1 others).
    """
    n = len(pool.vectors)
    if n < 2:
        raise ConfigError(f"leave-one-out needs a pool of at least 2 messages; got {n}")
    if k is not None and k > n - 1:
        raise ConfigError(f"k must be at most {n - 1} for a pool of {n} messages (each is compared with the "
                          f"others); got {k}")
    if k and vote and center is not None:
        return KNNConfig(k, vote, temperature, center), None
    if table is not None:
        keep = table["k"].notna()
        for column, value in (("k", k), ("vote", vote), ("center", center)):
            if value is not None:
                keep &= table[column] == value
        rows = table[keep]
        if len(rows):
            top = rows.iloc[0]
            return KNNConfig(int(top["k"]), str(top["vote"]), temperature, bool(top["center"])), \
                rows.reset_index(drop=True)
    ks = (k,) if k else tuple(v for v in _config.SWEEP_KS if v < n)
    return best_config(pool, temperature=temperature, ks=ks,
                       votes=(vote,) if vote else VOTE_RULES, centers=(center,) if center is not None else (False, True))
