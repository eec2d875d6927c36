"""Out-of-sample decisions of a pool: what each head would decide on messages it has not seen.

The k-NN head's out-of-sample vote shares are its leave-one-out
predictions; a head with a linear part (logistic regression, the blend) has
out-of-fold probabilities (stratified 10-fold, fixed seed: leave-one-out
would refit 2,000 models).
Either feeds :func:`workbench.decisions.operating_point.fit_operating_point`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import config as _config
from ..analysis.evaluate import loo_predict
from ..analysis.heads import out_of_fold_shares
from ..core.heads import HEADS
from ..core.knn import decide
from ..core.policy import DecisionPolicy, abstain_scores, tier_probabilities
from ..errors import ConfigError
from .operating_point import abstain_curve, fit_operating_point, mix_weights
from .savings import Pricing, savings_curve, savings_table
from .targets import HeadParams, Targets

__all__ = ["OutOfSample", "out_of_sample", "from_shares", "apply_policy", "policy_curve", "fit_default_point", "policy_points",
           "SavingsReport", "savings_report"]


@dataclass
class OutOfSample:
    """Out-of-sample class probabilities of one head on the pool, with the vote's winner, share and margin."""

    head: str
    shares: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    margin: np.ndarray
    predictions: object = None  # k-NN: the leave-one-out Predictions (neighbours for the review queue)


def from_shares(head, shares, taxonomy):
    """:class:`OutOfSample` of precomputed out-of-sample class probabilities."""
    pred, conf, margin = decide(shares, taxonomy.category_tier_rank)
    return OutOfSample(head, np.asarray(shares), pred, conf, margin)


def out_of_sample(x, labels, taxonomy, config, *, head="knn", params=None):
    """Out-of-sample class probabilities of the pool under ``head``.

    Parameters
    ----------
    x : (n, d) L2-normalised vectors
    labels : (n,) category indices
    taxonomy : Taxonomy
    config : KNNConfig
    head : str
        A key of :data:`~workbench.core.heads.HEADS`. ``knn``: leave-one-out vote shares; otherwise out-of-fold
        probabilities (see :func:`workbench.analysis.heads.out_of_fold_shares`).
    params : HeadParams, optional
        Folds, seed and head parameters (default: the project's).
    """
    labels = np.asarray(labels)
    params = HeadParams() if params is None else params
    if head == "knn":
        p = loo_predict(x, labels, taxonomy, config)
        return OutOfSample("knn", p.shares, p.pred, p.confidence, p.margin, p)
    if head not in HEADS:
        raise ConfigError(f"head must be one of {tuple(HEADS)}; got {head!r}")
    shares = out_of_fold_shares(x, labels, taxonomy, config, heads=(head,), n_splits=params.n_splits,
                                **params.fit_kwargs())[head]
    return from_shares(head, shares, taxonomy)


def apply_policy(oos, taxonomy, policy):
    """``(routed tier rank, abstain)`` of ``policy`` on out-of-sample predictions ``oos``."""
    routed, abstain, _ = policy.apply(oos.shares, taxonomy.category_tier_rank, len(taxonomy.tiers), pred=oos.pred,
                                      confidence=oos.confidence, margin=oos.margin)
    return routed, abstain


def policy_curve(oos, labels, taxonomy, policy):
    """Accuracy, downgrade and upgrade rates of ``policy``'s tier decisions at every abstain threshold.

    The tier decisions are ``policy``'s (its name and cost); its own
    threshold is ignored, its criterion used. See :func:`~workbench.decisions.operating_point.abstain_curve`.
    """
    rank = taxonomy.category_tier_rank
    routed, _, probs = DecisionPolicy(policy.name, policy.cost, policy.criterion).apply(
        oos.shares, rank, len(taxonomy.tiers), pred=oos.pred, confidence=oos.confidence, margin=oos.margin)
    scores = abstain_scores(policy.criterion, probs, routed, oos.confidence, oos.margin)
    return abstain_curve(scores, rank[np.asarray(labels)], routed)


def fit_default_point(oos, labels, taxonomy, targets=None, *, cost=None, calibrate=None):
    """Fit an operating point on out-of-sample predictions ``oos`` for ``targets`` (default: the project's).

    See :func:`~workbench.decisions.operating_point.fit_operating_point`; ``targets.traffic_mix``
    (tier -> share) fits the targets on that mix instead of the pool's own; ``cost`` defaults to the
    taxonomy's; ``calibrate`` maps the tier-confidence score first.
    """
    targets = Targets() if targets is None else targets
    rank = taxonomy.category_tier_rank
    cost = taxonomy.cost_matrix() if cost is None else cost
    weights = None if targets.traffic_mix is None else \
        mix_weights(rank[np.asarray(labels)], targets.traffic_mix, taxonomy.tiers)
    return fit_operating_point(oos.shares, labels, rank, cost, targets=targets, weights=weights,
                               vote=(oos.pred, oos.confidence, oos.margin), calibrate=calibrate)


def policy_points(oos, taxonomy, policies):
    """Out-of-sample ``(routed tier rank, abstain or None)`` of each named policy (``None``: the plain vote).

    The form :func:`~workbench.decisions.savings.savings_table` takes as ``points``.
    """
    rank = taxonomy.category_tier_rank
    return {name: (rank[oos.pred], None) if policy is None else apply_policy(oos, taxonomy, policy)
            for name, policy in policies.items()}


@dataclass
class SavingsReport:
    """Cost per 1,000 messages on the pool's own mix and on a user's, and the vote policy's cost curve."""

    pool_mix: object   # pandas.DataFrame from savings_table
    user_mix: object   # pandas.DataFrame from savings_table at ``traffic_mix``
    curve: object      # pandas.DataFrame from savings_curve (plain vote, user's mix)


def savings_report(oos, labels, taxonomy, points, *, pricing=None, traffic_mix=None,
                   criterion=_config.ABSTAIN_CRITERION):
    """What routing saves: fixed strategies and each policy in ``points`` (name -> policy or None), on two mixes.

    Parameters
    ----------
    oos : OutOfSample
    labels : (n,) category indices
    taxonomy : Taxonomy
    points : dict name -> DecisionPolicy or None (plain vote, never abstain)
    pricing : Pricing, optional
        Prices per tier and tokens per message and per categorizer call (default: the project's).
    traffic_mix : dict tier -> share, optional
        Default :data:`workbench.config.TRAFFIC_MIX`.
    criterion : str
        The score of the vote policy's cost curve.
    """
    pricing = Pricing() if pricing is None else pricing
    traffic_mix = _config.TRAFFIC_MIX if traffic_mix is None else traffic_mix
    rank = taxonomy.category_tier_rank
    true_rank = rank[np.asarray(labels)]
    kw = dict(tokens_per_message=pricing.tokens_per_message, categorizer_tokens=pricing.categorizer_tokens)
    routed = policy_points(oos, taxonomy, points)
    pool_mix = savings_table(true_rank, routed, taxonomy.tiers, pricing.prices, **kw)
    user_mix = savings_table(true_rank, routed, taxonomy.tiers, pricing.prices, traffic_mix=traffic_mix, **kw)
    vote_routed, _ = apply_policy(oos, taxonomy, DecisionPolicy("vote"))
    scores = abstain_scores(criterion, tier_probabilities(oos.shares, rank), vote_routed, oos.confidence, oos.margin)
    curve = savings_curve(true_rank, vote_routed, scores, taxonomy.tiers, pricing.prices, traffic_mix=traffic_mix,
                          **kw)
    return SavingsReport(pool_mix, user_mix, curve)
