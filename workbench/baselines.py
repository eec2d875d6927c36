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

import numpy as np

from .evaluate import KNNConfig
from .knn import center_vectors, decide, top_k, vote

log = logging.getLogger(__name__)

__all__ = ["METHODS", "cv_folds", "compare_baselines", "baseline_winner", "fit_logreg_head"]

METHODS = ("nearest_centroid", "logistic_regression", "knn")


def cv_folds(labels, *, n_splits=10, seed=0):
    """Stratified folds with a fixed seed: a list of ``(train_idx, test_idx)``."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    return list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


def _logreg(C, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))


def fit_logreg_head(x, labels, n_classes, *, C=1.0, seed=0):
    """Fit the logistic-regression head; returns ``(coef (n_classes, d), intercept (n_classes,))`` float32.

    ``x`` are the vectors the router compares (centred when its config
    centres). Classes absent from ``labels`` get a very low intercept.
    """
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels)
    model = _logreg(C, seed).fit(x, labels)
    scaler, lr = model[0], model[-1]
    coef_s = lr.coef_ if len(lr.classes_) > 2 else np.vstack([-lr.coef_[0], lr.coef_[0]]) / 2
    icpt_s = lr.intercept_ if len(lr.classes_) > 2 else np.array([-lr.intercept_[0], lr.intercept_[0]]) / 2
    coef_s = coef_s / scaler.scale_[None, :]
    icpt_s = icpt_s - coef_s @ scaler.mean_
    coef = np.zeros((n_classes, x.shape[1]), np.float64)
    icpt = np.full(n_classes, -1e4)
    coef[lr.classes_] = coef_s
    icpt[lr.classes_] = icpt_s
    return coef.astype(np.float32), icpt.astype(np.float32)


def _fold_vectors(x, train, test, center):
    if not center:
        return x[train], x[test]
    mean = x[train].mean(axis=0)
    return center_vectors(x[train], mean), center_vectors(x[test], mean)


def compare_baselines(x, labels, taxonomy, config=KNNConfig(), *, n_splits=10, seed=0, C=1.0, methods=METHODS):
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
    pandas.DataFrame, one row per method: ``method, tier_accuracy,
    category_accuracy, downgrade_rate, upgrade_rate, latency_ms, fit_s``,
    with ``attrs["predictions"]`` (method -> out-of-fold category indices)
    and ``attrs["folds"]``.
    """
    import pandas as pd
    from sklearn.neighbors import NearestCentroid

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        from .errors import ConfigError

        raise ConfigError(f"methods must be among {METHODS}; got {unknown}")
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels)
    n_cls = len(taxonomy.categories)
    rank = taxonomy.category_tier_rank
    folds = cv_folds(labels, n_splits=n_splits, seed=seed)
    preds = {m: np.empty(len(labels), np.int64) for m in methods}
    fit_s = dict.fromkeys(methods, 0.0)
    pred_s = dict.fromkeys(methods, 0.0)
    for train, test in folds:
        xtr, xte = _fold_vectors(x, train, test, config.center)
        for m in methods:
            t0 = time.perf_counter()
            if m == "knn":
                t1 = time.perf_counter()
                idx, sim = top_k(xte, xtr, config.k)
                shares = vote(labels[train][idx], sim, n_cls, rule=config.vote, temperature=config.temperature)
                p = decide(shares, rank)[0]
            else:
                model = NearestCentroid() if m == "nearest_centroid" else _logreg(C, seed)
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
    table = pd.DataFrame(rows)
    table.attrs["predictions"] = preds
    table.attrs["folds"] = f"stratified {n_splits}-fold, seed {seed}"
    return table


def baseline_winner(table, *, clear_margin=0.015):
    """Which method wins on tier accuracy, and whether logistic regression beats k-NN clearly.

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
    if knn is None:
        summary = f"{winner} has the highest tier accuracy ({100 * acc[winner]:.1f}%)."
    elif not beats:
        summary = f"k-NN has the highest tier accuracy ({100 * knn:.1f}%); no baseline beats it."
    else:
        parts = ", ".join(f"{m} {100 * acc[m]:.1f}%" for m in beats)
        summary = (f"{parts} beat{'s' if len(beats) == 1 else ''} k-NN ({100 * knn:.1f}%) on tier accuracy"
                   + ("; logistic regression wins clearly and is worth selecting as the router head."
                      if clear else "; the difference is within "
                      f"{100 * clear_margin:.1f} points, so k-NN stays the default head."))
    return {"winner": winner, "beats_knn": beats, "logreg_clearly_better": clear, "summary": summary}
