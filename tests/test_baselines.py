import numpy as np
import pandas as pd

from workbench.analysis.baselines import baseline_winner, compare_baselines
from workbench.analysis.heads import cv_folds, fit_logreg_head
from workbench.core.knn import KNNConfig
from workbench.core.heads import linear_shares

TABLE = pd.DataFrame({"method": ["nearest_centroid", "logistic_regression", "knn"],
                      "tier_accuracy": [0.85, 0.90, 0.86], "downgrade_rate": [0.06, 0.04, 0.05]})


def test_all_methods_use_the_same_folds_and_report_latency(small_pool):
    comparison = compare_baselines(small_pool.vectors, small_pool.labels, small_pool.taxonomy,
                                   KNNConfig(k=5, center=True), n_splits=5, seed=0)
    t = comparison.table
    assert t["method"].tolist() == ["nearest_centroid", "logistic_regression", "knn"]
    assert t["tier_accuracy"].between(0.5, 1).all() and (t["latency_ms"] > 0).all()
    assert (t["tier_accuracy"] >= t["category_accuracy"]).all()
    assert comparison.folds == "stratified 5-fold, seed 0"
    assert all(len(p) == len(small_pool.labels) for p in comparison.predictions.values())


def test_folds_are_stratified_and_seeded():
    labels = np.repeat(np.arange(7), 20)
    a, b = cv_folds(labels, n_splits=10, seed=3), cv_folds(labels, n_splits=10, seed=3)
    assert all((x[1] == y[1]).all() for x, y in zip(a, b))
    assert all(np.bincount(labels[test], minlength=7).tolist() == [2] * 7 for _, test in a)


def test_logreg_head_as_plain_arrays_matches_scikit_learn(small_pool):
    from workbench.analysis.heads import logreg_model

    x, y = small_pool.vectors, small_pool.labels
    coef, icpt = fit_logreg_head(x, y, 7, C=1.0, seed=0)
    assert coef.shape == (7, x.shape[1]) and coef.dtype == np.float32
    ref = logreg_model(1.0, 0).fit(x, y).predict_proba(x)
    np.testing.assert_allclose(linear_shares(x, coef, icpt), ref, atol=1e-3)


def test_winner_says_honestly_when_a_baseline_beats_knn():
    w = baseline_winner(TABLE)
    assert w["winner"] == "logistic_regression" and w["logreg_clearly_better"]
    assert "beats k-NN" in w["summary"] and "nearest_centroid" not in w["beats_knn"]


def test_small_wins_are_not_called_clear():
    t = TABLE.assign(tier_accuracy=[0.85, 0.87, 0.86])
    w = baseline_winner(t)
    assert not w["logreg_clearly_better"] and "within 1.5 points" in w["summary"] and "06_export" in w["summary"]
