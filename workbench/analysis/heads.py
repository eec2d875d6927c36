"""Training router heads (scikit-learn): stratified folds, the logistic-regression head, out-of-fold probabilities.

Applying a trained head needs numpy only (:mod:`workbench.core.heads`);
fitting one needs scikit-learn, so it lives here.
"""
from __future__ import annotations

import logging

import numpy as np

from .. import config as _config
from ..errors import ConfigError, require

log = logging.getLogger(__name__)

__all__ = ["cv_folds", "logreg_model", "fit_logreg_head", "fit_mlp_head", "fit_head", "out_of_fold_shares"]


def cv_folds(labels, *, n_splits=_config.N_SPLITS, seed=_config.SEED):
    """Stratified folds with a fixed seed: a list of ``(train_idx, test_idx)``.

    ``n_splits="loo"`` gives leave-one-out folds (one per message): exact
    leave-one-out for a trained head, at one fit per message.
    """
    model_selection = require("sklearn.model_selection", purpose="cross-validation folds")

    labels = np.asarray(labels)
    if isinstance(n_splits, str):
        if n_splits != "loo":
            raise ConfigError(f"n_splits must be an integer >= 2 or 'loo'; got {n_splits!r}")
        return list(model_selection.LeaveOneOut().split(np.zeros(len(labels))))
    smallest = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min()) if len(labels) else 0
    if smallest < n_splits:  # a tiny pool: every fold must still see every category in training
        log.warning("only %d messages in the smallest category: using %d folds instead of %d",
                    smallest, max(2, smallest), n_splits)
        n_splits = max(2, smallest)
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


def fit_mlp_head(x, labels, n_classes, *, hidden=_config.MLP_HIDDEN, alpha=_config.MLP_ALPHA, bags=_config.MLP_BAGS,
                 seed=_config.SEED, max_iter=_config.MLP_MAX_ITER):
    """Fit the networks of the ``mlp`` head; returns the four arrays of :class:`workbench.core.heads.Networks`.

    Each of the ``bags`` networks is scikit-learn's ``MLPClassifier`` (one
    hidden ReLU layer, adam, L2 penalty ``alpha``) on standardised vectors,
    seeded ``seed + b``; the standardisation is folded into the hidden layer.
    Classes absent from ``labels`` get a very low output intercept.
    """
    require("sklearn", purpose="the mlp head")
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(x, np.float32)
    labels = np.asarray(labels)
    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    w1 = np.zeros((bags, hidden, x.shape[1]), np.float32)
    b1 = np.zeros((bags, hidden), np.float32)
    w2 = np.zeros((bags, n_classes, hidden), np.float32)
    b2 = np.full((bags, n_classes), -1e4, np.float32)
    for b in range(bags):
        net = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=max_iter, random_state=seed + b)
        with warnings.catch_warnings():
            # at max_iter the network is used as it stands; the folds judge it either way
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(xs, labels)
        hid = net.coefs_[0] / scaler.scale_[:, None]          # (dim, hidden), in the router's units
        w1[b] = hid.T
        b1[b] = net.intercepts_[0] - scaler.mean_ @ hid
        out, icpt = net.coefs_[1], net.intercepts_[1]          # (hidden, k); k = 1 for two classes
        if len(net.classes_) == 2:
            out, icpt = np.hstack([-out, out]) / 2, np.array([-icpt[0], icpt[0]]) / 2
        w2[b, net.classes_] = out.T
        b2[b, net.classes_] = icpt
    return w1, b1, w2, b2


def fit_head(name, x, labels, n_classes, *, C=_config.LOGREG_C, seed=_config.SEED, blend_weight=_config.BLEND_WEIGHT):
    """Train the router head ``name`` on the vectors the router compares; returns a :mod:`workbench.core.heads` object.

    ``x`` are centred already when the k-NN config centres. A k-NN head has
    nothing to train; a linear head (``logreg``, ``blend``) takes a second or two
    on a few thousand messages, so it is simply refitted whenever the pool grows.
    """
    from ..core.heads import HEADS, BlendHead, KNNHead, LinearHead, MLPHead
    from ..errors import ConfigError

    if name not in HEADS:
        raise ConfigError(f"head must be one of {tuple(HEADS)}; got {name!r}")
    if name == KNNHead.name:
        return KNNHead()
    if name == MLPHead.name:
        return MLPHead(*fit_mlp_head(x, labels, n_classes, seed=seed), blend_weight)
    coef, icpt = fit_logreg_head(x, labels, n_classes, C=C, seed=seed)
    return LinearHead(coef, icpt) if name == LinearHead.name else BlendHead(coef, icpt, blend_weight)


def out_of_fold_shares(x, labels, taxonomy, config, *, heads=_config.HEAD_CANDIDATES, n_splits=_config.N_SPLITS,
                       seed=_config.SEED, C=_config.LOGREG_C, blend_weight=_config.BLEND_WEIGHT):
    """Out-of-fold class probabilities of every head in ``heads``, on the same stratified folds.

    Each fold centres with its training mean when ``config.center`` (no head
    sees its test rows), routes the test rows against the training rows with
    ``config``, and fits the linear part once for the heads that share it
    (the ``mlp`` head trains its own networks in each fold).
    ``n_splits="loo"`` is exact leave-one-out (one fit per message: minutes
    on a few thousand messages; ``benchmarks/head_loo.py``).

    Returns
    -------
    dict head name -> (n, n_categories) array.
    """
    from ..core.heads import HEADS, BlendHead, LinearHead
    from ..core.knn import center, predict
    from ..errors import ConfigError

    unknown = [h for h in heads if h not in HEADS]
    if unknown:
        raise ConfigError(f"heads must be among {tuple(HEADS)}; got {unknown}")
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels)
    n_classes, rank = len(taxonomy.categories), taxonomy.category_tier_rank
    out = {h: np.zeros((len(labels), n_classes)) for h in heads}
    linear_needed = any(h in (LinearHead.name, BlendHead.name) for h in heads)
    for train, test in cv_folds(labels, n_splits=n_splits, seed=seed):
        if config.center:
            mean = x[train].mean(axis=0)
            xtr, xte = center(x[train], mean), center(x[test], mean)
        else:
            xtr, xte = x[train], x[test]
        vote = predict(xte, xtr, labels[train], config, rank).shares
        linear = fit_logreg_head(xtr, labels[train], n_classes, C=C, seed=seed) if linear_needed else None
        for h in heads:
            if h in (LinearHead.name, BlendHead.name):  # one logistic regression per fold serves both
                head = LinearHead(*linear) if h == LinearHead.name else BlendHead(*linear, blend_weight)
            else:
                head = fit_head(h, xtr, labels[train], n_classes, seed=seed, blend_weight=blend_weight)
            out[h][test] = head.shares(xte, vote)
    return out
