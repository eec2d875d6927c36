"""Training router heads (scikit-learn): stratified folds and the logistic-regression head.

Applying a trained head needs numpy only (:mod:`workbench.core.heads`);
fitting one needs scikit-learn, so it lives here.
"""
from __future__ import annotations

import numpy as np

from .. import config as _config
from ..errors import require

__all__ = ["cv_folds", "logreg_model", "fit_logreg_head"]


def cv_folds(labels, *, n_splits=_config.N_SPLITS, seed=_config.SEED):
    """Stratified folds with a fixed seed: a list of ``(train_idx, test_idx)``."""
    model_selection = require("sklearn.model_selection", purpose="cross-validation folds")

    labels = np.asarray(labels)
    folds = model_selection.StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(folds.split(np.zeros(len(labels)), labels))


def logreg_model(C=_config.LOGREG_C, seed=_config.SEED):
    """Standardise, then multinomial logistic regression (an unfitted scikit-learn pipeline)."""
    require("sklearn", purpose="the logistic-regression head")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))


def fit_logreg_head(x, labels, n_classes, *, C=_config.LOGREG_C, seed=_config.SEED):
    """Fit the logistic-regression head; returns ``(coef (n_classes, d), intercept (n_classes,))`` float32.

    ``x`` are the vectors the router compares (centred when its config
    centres). The standardisation is folded into the weights. Classes absent
    from ``labels`` get a very low intercept.
    """
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels)
    model = logreg_model(C, seed).fit(x, labels)
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
