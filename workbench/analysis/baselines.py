"""Baselines on the same folds with the same vectors: nearest centroid, logistic regression, k-NN.

Leave-one-out is too slow for logistic regression on a 2,000-message pool,
so the comparison uses stratified ``n_splits``-fold cross-validation with a
fixed seed for all three methods. Each fold centres the vectors with the
mean of its *training* rows when the k-NN config centres, so no method sees
its test rows. Latency is the predict time per message measured in the run
(the embedding, the same for all three, is not included).

The logistic-regression head can be exported for the router as plain
arrays (:func:`fit_logreg_head`): the standardisation is folded into the
weights, so the router needs only ``softmax(x @ coef.T + intercept)``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from .. import config as _config
from ..core.knn import center, predict
from ..errors import ConfigError
from .heads import cv_folds, logreg_model

log = logging.getLogger(__name__)

__all__ = ["METHODS", "BaselineComparison", "compare_baselines", "baseline_winner", "fold_vectors"]

METHODS = ("nearest_centroid", "logistic_regression", "knn")


@dataclass
class BaselineComparison:
    """Every method on the same folds: a table, out-of-fold predictions and how the folds were made."""

    table: object         # pandas.DataFrame, one row per method
    predictions: dict     # method -> out-of-fold category index per message
    folds: str            # e.g. "stratified 10-fold, seed 0"


def fold_vectors(x, train, test, center_vectors):
    """Training and test vectors of one fold, centred with the *training* mean when asked."""
    if not center_vectors:
        return x[train], x[test]
    mean = x[train].mean(axis=0)
    return center(x[train], mean), center(x[test], mean)


def compare_baselines(x, labels, taxonomy, config, *, n_splits=_config.N_SPLITS, seed=_config.SEED, C=_config.LOGREG_C,
                      methods=METHODS) -> BaselineComparison:
    """Tier and category accuracy, downgrade rate and latency of each method on the same folds.

    Parameters
    ----------
    x : (n, d) float32, L2-normalised
    labels : (n,) category indices
    taxonomy : Taxonomy
    config : KNNConfig
        k-NN parameters; ``config.center`` centres the vectors for every method.
    n_splits : int
    seed : int
    C : float
        Inverse regularisation of the logistic regression (on standardised features).
    methods : sequence of str

    Returns
    -------
    BaselineComparison, whose ``table`` has one row per method: ``method,
    tier_accuracy, category_accuracy, downgrade_rate, upgrade_rate, latency_ms, fit_s``.
    """
    import pandas as pd
    from sklearn.neighbors import NearestCentroid

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"methods must be among {METHODS}; got {unknown}")
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels)
    rank = taxonomy.category_tier_rank
    folds = cv_folds(labels, n_splits=n_splits, seed=seed)
    preds = {m: np.empty(len(labels), np.int64) for m in methods}
    fit_s = dict.fromkeys(methods, 0.0)
    pred_s = dict.fromkeys(methods, 0.0)
    for train, test in folds:
        xtr, xte = fold_vectors(x, train, test, config.center)
        for m in methods:
            t0 = time.perf_counter()
            if m == "knn":
                t1 = time.perf_counter()
                p = predict(xte, xtr, labels[train], config, rank).pred
            else:
                model = NearestCentroid() if m == "nearest_centroid" else logreg_model(C, seed)
                model.fit(xtr, labels[train])
                t1 = time.perf_counter()
                p = model.predict(xte)
            t2 = time.perf_counter()
            fit_s[m] += t1 - t0
            pred_s[m] += t2 - t1
            preds[m][test] = p
    true_rank = rank[labels]
    rows = []
    for m in methods:
        pr = rank[preds[m]]
        rows.append({"method": m, "tier_accuracy": float((pr == true_rank).mean()),
                     "category_accuracy": float((preds[m] == labels).mean()),
                     "downgrade_rate": float((pr < true_rank).mean()), "upgrade_rate": float((pr > true_rank).mean()),
                     "latency_ms": 1000.0 * pred_s[m] / len(labels), "fit_s": fit_s[m]})
        log.info("%s: tier accuracy %.3f", m, rows[-1]["tier_accuracy"])
    return BaselineComparison(pd.DataFrame(rows), preds, f"stratified {n_splits}-fold, seed {seed}")


def baseline_winner(table, *, clear_margin=0.015):
    """Which method wins on tier accuracy, and whether logistic regression beats k-NN clearly.

    The baselines are a diagnostic of the vectors: the head that ships is chosen
    separately, on the same folds at the default operating point
    (:func:`workbench.decisions.head_choice.choose_head`, called by every export),
    so the summary says so instead of recommending a head.

    Returns
    -------
    dict with ``winner`` (highest tier accuracy, fewer downgrades on a tie),
    ``beats_knn`` (methods above k-NN), ``logreg_clearly_better`` (by more
    than ``clear_margin``) and ``summary`` (one honest sentence).
    """
    t = table.sort_values(["tier_accuracy", "downgrade_rate"], ascending=[False, True], kind="stable")
    acc = dict(zip(table["method"], table["tier_accuracy"]))
    winner = str(t.iloc[0]["method"])
    knn = acc.get("knn")
    beats = [m for m in acc if knn is not None and m != "knn" and acc[m] > knn]
    clear = bool(knn is not None and "logistic_regression" in acc and acc["logistic_regression"] - knn > clear_margin)
    chooser = "the exported head is chosen on the same folds at the default operating point (06_export)"
    if knn is None:
        summary = f"{winner} has the highest tier accuracy ({100 * acc[winner]:.1f}%)."
    elif not beats:
        summary = f"k-NN has the highest tier accuracy ({100 * knn:.1f}%); no baseline beats it; {chooser}."
    else:
        parts = ", ".join(f"{m} {100 * acc[m]:.1f}%" for m in beats)
        summary = (f"{parts} beat{'s' if len(beats) == 1 else ''} k-NN ({100 * knn:.1f}%) on tier accuracy"
                   + (f" by more than {100 * clear_margin:.1f} points" if clear else
                      f", within {100 * clear_margin:.1f} points") + f"; {chooser}.")
    return {"winner": winner, "beats_knn": beats, "logreg_clearly_better": clear, "summary": summary}
