"""Out-of-sample decisions of a pool, and the policy (and head) a pool.npz stores for its router.

The k-NN head's out-of-sample vote shares are its leave-one-out
predictions; the logistic-regression head's are out-of-fold probabilities
(stratified 10-fold, fixed seed: leave-one-out would refit 2,000 models).
Either feeds :func:`workbench.operating_point.fit_operating_point`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .evaluate import KNNConfig, loo_predict
from .knn import center_vectors, decide
from .policy import DecisionPolicy

log = logging.getLogger(__name__)

__all__ = ["HEADS", "OutOfSample", "out_of_sample", "apply_policy", "policy_curve", "fit_default_point",
           "policy_exports"]

HEADS = ("knn", "logreg")


@dataclass
class OutOfSample:
    """Out-of-sample class probabilities of one head on the pool, with the vote's winner, share and margin."""

    head: str
    shares: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    margin: np.ndarray
    predictions: object = None  # k-NN: the leave-one-out Predictions (neighbours for the review queue)


def _router_vectors(x, center):
    x = np.asarray(x, np.float32)
    return center_vectors(x, x.mean(axis=0)) if center else x


def out_of_sample(x, labels, taxonomy, config=KNNConfig(), *, head="knn", n_splits=10, seed=0, C=1.0):
    """Out-of-sample class probabilities of the pool under ``head``.

    Parameters
    ----------
    x : (n, d) L2-normalised vectors
    labels : (n,) category indices
    taxonomy : Taxonomy
    config : KNNConfig
    head : {"knn", "logreg"}
        ``knn``: leave-one-out vote shares; ``logreg``: out-of-fold
        probabilities of the logistic-regression head (``n_splits`` folds, ``seed``, ``C``).
    """
    from .baselines import cv_folds, fit_logreg_head
    from .policy import linear_shares

    labels = np.asarray(labels)
    rank = taxonomy.category_tier_rank
    if head == "knn":
        p = loo_predict(x, labels, taxonomy, config)
        return OutOfSample("knn", p.shares, p.pred, p.confidence, p.margin, p)
    if head != "logreg":
        raise ConfigError(f"head must be one of {HEADS}; got {head!r}")
    x = np.asarray(x, np.float32)
    shares = np.zeros((len(labels), len(taxonomy.categories)))
    for train, test in cv_folds(labels, n_splits=n_splits, seed=seed):
        mean = x[train].mean(axis=0)
        xtr = center_vectors(x[train], mean) if config.center else x[train]
        xte = center_vectors(x[test], mean) if config.center else x[test]
        coef, icpt = fit_logreg_head(xtr, labels[train], len(taxonomy.categories), C=C, seed=seed)
        shares[test] = linear_shares(xte, coef, icpt)
    pred, conf, margin = decide(shares, rank)
    return OutOfSample("logreg", shares, pred, conf, margin)


def apply_policy(oos, taxonomy, policy):
    """``(routed tier rank, abstain)`` of ``policy`` on out-of-sample predictions ``oos``."""
    routed, abstain, _ = policy.apply(oos.shares, taxonomy.category_tier_rank, len(taxonomy.tiers), pred=oos.pred,
                                      confidence=oos.confidence, margin=oos.margin)
    return routed, abstain


def policy_curve(oos, labels, taxonomy, policy):
    """Accuracy, downgrade and upgrade rates of ``policy``'s tier decisions at every abstain threshold.

    The tier decisions are ``policy``'s (its name and cost); its own
    threshold is ignored, its criterion used. See :func:`workbench.operating_point.abstain_curve`.
    """
    from .operating_point import abstain_curve
    from .policy import abstain_scores

    rank = taxonomy.category_tier_rank
    routed, _, probs = DecisionPolicy(policy.name, policy.cost, policy.criterion).apply(
        oos.shares, rank, len(taxonomy.tiers), pred=oos.pred, confidence=oos.confidence, margin=oos.margin)
    scores = abstain_scores(policy.criterion, probs, routed, oos.confidence, oos.margin)
    return abstain_curve(scores, rank[np.asarray(labels)], routed)


def fit_default_point(oos, labels, taxonomy, *, policy="cost", criterion="tier_confidence", max_downgrade=0.02,
                      max_abstain=0.10, downgrade_weights=(0.25, 0.5, 1.0, 2.0), cost=None, traffic_mix=None):
    """Fit an operating point on out-of-sample predictions ``oos`` (defaults: the issue's targets).

    See :func:`workbench.operating_point.fit_operating_point`; ``traffic_mix``
    (tier -> share) fits the targets on that mix instead of the pool's own.
    """
    from .operating_point import fit_operating_point, mix_weights

    rank = taxonomy.category_tier_rank
    cost = taxonomy.cost_matrix() if cost is None else cost
    weights = None if traffic_mix is None else mix_weights(rank[np.asarray(labels)], traffic_mix, taxonomy.tiers)
    return fit_operating_point(oos.shares, labels, rank, cost, policy=policy, criterion=criterion,
                               max_downgrade=max_downgrade, max_abstain=max_abstain,
                               downgrade_weights=downgrade_weights, weights=weights, pred=oos.pred,
                               confidence=oos.confidence, margin=oos.margin)


def policy_exports(x, labels, taxonomy, config=KNNConfig(), *, policy="vote", criterion="tier_confidence",
                   threshold=None, max_downgrade=None, max_abstain=None, downgrade_weights=(0.25, 0.5, 1.0, 2.0),
                   head="knn", cost=None, traffic_mix=None, C=1.0, seed=0):
    """What :func:`workbench.export.write_pool_npz` needs to store a decision policy (and head).

    With a target (``max_downgrade`` / ``max_abstain``) the threshold and
    downgrade weight are fitted on the head's out-of-sample predictions;
    otherwise ``threshold`` is used as given (``None``: never abstain).

    Parameters
    ----------
    x, labels, taxonomy, config
        The pool's vectors, category indices, taxonomy and k-NN config.
    policy : {"vote", "cost", "any"}
        ``any`` (fitting only) lets plain voting compete with the cost-aware policy.
    criterion : {"tier_confidence", "confidence", "margin"}
    threshold, max_downgrade, max_abstain : float, optional
    downgrade_weights : sequence of float
    head : {"knn", "logreg"}
    cost : (n_tiers, n_tiers) array, optional
        Default: ``taxonomy.cost_matrix()``.
    traffic_mix : dict tier -> share, optional
        Fit the targets on this mix instead of the pool's own.
    C, seed
        Logistic-regression head parameters.

    Returns
    -------
    extra_metadata : dict
    extra_arrays : dict
    point : OperatingPoint or None (when fitted)
    """
    from .baselines import fit_logreg_head

    if head not in HEADS:
        raise ConfigError(f"head must be one of {HEADS}; got {head!r}")
    if threshold is not None and (max_downgrade is not None or max_abstain is not None):
        raise ConfigError("give either an abstain threshold or a target (max_downgrade / max_abstain), not both")
    cost = taxonomy.cost_matrix() if cost is None else np.asarray(cost, np.float64)
    point = None
    if max_downgrade is not None or max_abstain is not None:
        oos = out_of_sample(x, labels, taxonomy, config, head=head, seed=seed, C=C)
        point = fit_default_point(oos, labels, taxonomy, policy=policy, criterion=criterion,
                                  max_downgrade=max_downgrade, max_abstain=max_abstain,
                                  downgrade_weights=downgrade_weights, cost=cost, traffic_mix=traffic_mix)
        chosen = point.policy
        if not point.met:
            log.warning("no operating point meets the targets; using the one with the fewest downgrades")
    else:
        if policy == "any":
            raise ConfigError("policy 'any' needs a target to choose by (max_downgrade / max_abstain)")
        chosen = DecisionPolicy(policy, cost.tolist() if policy == "cost" else None, criterion, threshold)
    meta = {"policy": chosen.to_metadata(), "head": head}
    if point is not None:
        meta["operating_point"] = {k: v for k, v in point.to_dict().items() if k != "policy"}
    arrays = {}
    if head == "logreg":
        coef, icpt = fit_logreg_head(_router_vectors(x, config.center), labels, len(taxonomy.categories), C=C,
                                     seed=seed)
        arrays = {"head_coef": coef, "head_intercept": icpt}
    return meta, arrays, point
