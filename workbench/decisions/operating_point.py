"""Operating points: abstain curves and fitting a policy's threshold to a target (numpy only).

Every rate is computed on out-of-sample (leave-one-out or out-of-fold)
predictions of the pool, optionally reweighted to a traffic mix per true
tier (:func:`mix_weights`). Abstained messages go to the label source: they
count as routed correctly and never as a downgrade or upgrade.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..core.knn import decide
from ..core.policy import POLICIES, DecisionPolicy, abstain_scores
from ..errors import ConfigError
from .savings import normalize_mix
from .targets import ANY_POLICY

__all__ = ["OperatingPoint", "Candidate", "mix_weights", "abstain_curve", "paired_standard_error", "rule_options",
           "fit_operating_point"]


@dataclass
class OperatingPoint:
    """An abstain threshold and what it gives on leave-one-out predictions (rates: shares of all messages)."""

    policy: DecisionPolicy
    downgrade_weight: float
    abstain_rate: float
    downgrade_rate: float
    upgrade_rate: float
    tier_accuracy: float          # abstained messages count as routed correctly (the categorizer handles them)
    answered_tier_accuracy: float  # accuracy on the messages the router answers itself
    met: bool                      # whether every target was met

    def to_dict(self) -> dict:
        return {"policy": self.policy.to_metadata(), "downgrade_weight": self.downgrade_weight,
                "abstain_rate": self.abstain_rate, "downgrade_rate": self.downgrade_rate,
                "upgrade_rate": self.upgrade_rate, "tier_accuracy": self.tier_accuracy,
                "answered_tier_accuracy": self.answered_tier_accuracy, "met": self.met}


def mix_weights(true_rank, traffic_mix, tiers):
    """Per-message weights that reweight a pool to a traffic mix per true tier (summing to 1).

    ``traffic_mix`` maps tier name -> share (any positive scale).
    """
    t = np.asarray(true_rank)
    mix = normalize_mix(traffic_mix, tiers)
    counts = np.bincount(t, minlength=len(tiers)).astype(np.float64)
    if ((mix > 0) & (counts == 0)).any():
        raise ConfigError("traffic_mix gives a share to a tier that has no message")
    return (mix / np.where(counts > 0, counts, 1.0))[t]


def paired_standard_error(a, b, weights=None):
    """Standard error of the difference of two paired accuracies (``a``, ``b``: right or wrong per message).

    ``sqrt(#(a right, b wrong) + #(a wrong, b right)) / n`` (McNemar's
    discordant pairs); with ``weights`` (per message, any scale) the
    discordant messages count by their normalised weights.
    """
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    w = np.full(len(a), 1.0 / max(len(a), 1)) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    return float(np.sqrt(np.sum(w ** 2 * (a != b))))


def abstain_curve(scores, true_rank, routed_rank, *, weights=None):
    """Rates at every distinct abstain threshold, from never abstaining to always.

    Abstained messages go to the label source, so they count as routed
    correctly in ``tier_accuracy`` and never as a downgrade or upgrade.
    ``weights`` (per message, e.g. :func:`mix_weights`) turn the rates into
    rates on another traffic mix.

    Returns
    -------
    dict of arrays (one entry per threshold, ascending): ``threshold``,
    ``abstain_rate``, ``tier_accuracy``, ``answered_tier_accuracy``,
    ``downgrade_rate``, ``upgrade_rate``.
    """
    scores = np.asarray(scores, np.float64)
    true_rank, routed_rank = np.asarray(true_rank), np.asarray(routed_rank)
    n = len(scores)
    if n == 0:
        raise ConfigError("abstain_curve needs at least one prediction")
    weight = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_weight = scores[order], weight[order]
    # threshold sorted_scores[i] abstains on every row with a smaller score
    thresholds = np.unique(np.concatenate([[0.0], sorted_scores, [np.nextafter(sorted_scores[-1], np.inf)]]))
    n_abstained = np.searchsorted(sorted_scores, thresholds, side="left")

    def kept(per_message):
        """Weighted total of ``per_message`` over the rows each threshold keeps (answers itself)."""
        cumulative = np.concatenate([[0], np.cumsum(per_message[order] * sorted_weight)])
        return cumulative[-1] - cumulative[n_abstained]

    wrong_kept = kept(routed_rank != true_rank)
    down_kept, up_kept = kept(routed_rank < true_rank), kept(routed_rank > true_rank)
    answered = kept(np.ones(n))
    abstained = np.concatenate([[0], np.cumsum(sorted_weight)])[n_abstained]
    with np.errstate(invalid="ignore", divide="ignore"):
        answered_accuracy = np.where(answered > 1e-15, 1.0 - wrong_kept / np.maximum(answered, 1e-15), np.nan)
    return {"threshold": thresholds, "abstain_rate": abstained, "tier_accuracy": 1.0 - wrong_kept,
            "answered_tier_accuracy": answered_accuracy, "downgrade_rate": down_kept, "upgrade_rate": up_kept}


class Candidate(NamedTuple):
    """One decision rule's best point on its abstain curve, as the operating-point fit compares them."""

    key: tuple                 # (met, objective, -downgrades, -abstain, -upgrades): larger is better
    policy: DecisionPolicy     # the rule (name, cost, criterion), threshold not yet set
    downgrade_weight: float
    curve: dict                # abstain_curve of the rule
    index: int                 # the point on the curve
    handled: np.ndarray        # per message: what the objective counts (answered right, or right or abstained)

    @property
    def met(self) -> bool:
        return self.key[0]

    def point(self) -> "OperatingPoint":
        """The candidate as an operating point, its threshold set."""
        at = {name: float(values[self.index]) for name, values in self.curve.items()}
        # a fitted policy keeps its threshold even at 0 (never abstains): the pool still says it was fitted to abstain
        policy = DecisionPolicy(self.policy.name, self.policy.cost, self.policy.criterion, at["threshold"])
        return OperatingPoint(policy, self.downgrade_weight, abstain_rate=at["abstain_rate"],
                              downgrade_rate=at["downgrade_rate"], upgrade_rate=at["upgrade_rate"],
                              tier_accuracy=at["tier_accuracy"], answered_tier_accuracy=at["answered_tier_accuracy"],
                              met=self.met)


def rule_options(targets, cost):
    """``(downgrade weight, DecisionPolicy without threshold)`` for every rule the fit tries, simplest first."""
    names = tuple(POLICIES) if targets.policy == ANY_POLICY else (targets.policy,)
    return [(weight, DecisionPolicy(name, rule.cost, targets.criterion))
            for name in names for weight, rule in POLICIES[name].variants(cost, targets.downgrade_weights)]


def _best_on_curve(policy, downgrade_weight, scores, routed, true_rank, *, targets, weights):
    """The rule's best threshold for ``targets`` (see :func:`fit_operating_point` for the order)."""
    curve = abstain_curve(scores, true_rank, routed, weights=weights)
    abstain_rate, downgrade_rate = curve["abstain_rate"], curve["downgrade_rate"]
    upgrade_rate, accuracy = curve["upgrade_rate"], curve["tier_accuracy"]
    within_abstain = np.ones(len(abstain_rate), bool) if targets.max_abstain is None else \
        abstain_rate <= targets.max_abstain + 1e-12
    meets = within_abstain & (True if targets.max_downgrade is None else downgrade_rate <= targets.max_downgrade + 1e-12)
    met = bool(meets.any())
    objective = accuracy - abstain_rate if targets.max_downgrade is not None else accuracy
    # rounded: abstaining on a wrong message leaves the objective unchanged, so plateaus are common
    keys = [(met, round(float(objective[i] if met else -downgrade_rate[i]), 9), -downgrade_rate[i],
             -abstain_rate[i], -upgrade_rate[i], int(i)) for i in np.flatnonzero(meets if met else within_abstain)]
    best = max(keys, key=lambda key: (key[:-1], -key[-1]))  # the first index among equal keys
    index = best[-1]
    abstained = np.asarray(scores) < curve["threshold"][index]
    right = routed == true_rank
    handled = (~abstained & right) if targets.max_downgrade is not None else (abstained | right)
    return Candidate(best[:-1], policy, downgrade_weight, curve, index, handled)


def _simplest_within_one_se(candidates, weights):
    """The best candidate; when targets are met, the simplest within one paired standard error of it."""
    best = max(candidates, key=lambda c: c.key)
    if best.met:
        for candidate in candidates:
            if candidate.met and best.key[1] - candidate.key[1] <= \
                    paired_standard_error(candidate.handled, best.handled, weights) + 1e-12:
                return candidate
    return best


def fit_operating_point(shares, labels, class_tier_rank, cost=None, *, targets, weights=None, vote=None,
                        calibrate=None):
    """Choose the abstain threshold (and decision rule) for ``targets`` on out-of-sample predictions.

    Every (decision rule, threshold) pair meeting the targets is a
    candidate; the rules are the registered policies' variants
    (:meth:`~workbench.core.policy.TierPolicy.variants`: the cost-aware
    policy once per downgrade weight). With a ``max_downgrade`` target the
    winner routes the largest share of traffic correctly *by itself*
    (``tier_accuracy - abstain_rate``: abstaining and upgrading are the
    prices paid for fewer downgrades); with only ``max_abstain`` it has the
    highest tier accuracy counting abstained messages as handled correctly by
    the categorizer. Ties go to fewer downgrades, then less abstention. When
    nothing meets the targets, the point with the fewest downgrades within the
    abstain budget is returned with ``met=False``.

    Across decision rules (in :data:`~workbench.core.policy.POLICIES` order,
    plain voting first, then the cost-aware tier by increasing downgrade
    weight) the *simplest* rule whose best point is within one paired standard
    error of the overall best wins (the one-standard-error rule): a cost-aware
    rule must earn its departure from plain voting by more than fold noise. It
    is also the rule whose effect the folds understate: on messages unlike the
    pool's, votes are less confident, so a cost-aware rule moves many more of
    them up a tier than it does in the folds (``benchmarks/generalisation.py``).

    Parameters
    ----------
    shares : (n, n_categories) out-of-sample (leave-one-out) vote shares
    labels : (n,) true category indices
    class_tier_rank : (n_categories,) tier rank per category
    cost : (n_tiers, n_tiers) array, optional
        Required by a policy that uses the cost matrix.
    targets : Targets
        Policy (or ``any``), criterion, ``max_downgrade`` / ``max_abstain`` (at least one), downgrade weights.
    weights : (n,) array, optional
        Per-message weights, e.g. :func:`mix_weights` to fit for a user's
        traffic mix instead of the pool's own; rates are then on that mix.
    vote : (pred, confidence, margin), optional
        The category vote's winner, share and margin (:func:`~workbench.core.knn.decide`; computed when not given).
    calibrate : Calibration, optional
        Maps the ``tier_confidence`` score first, so the threshold is a calibrated probability.

    Returns
    -------
    OperatingPoint
    """
    if not targets.fits:
        raise ConfigError("fit_operating_point needs a target: max_downgrade and/or max_abstain")
    rank = np.asarray(class_tier_rank, np.int64)
    true_rank = rank[np.asarray(labels)]
    pred, confidence, margin = decide(shares, rank) if vote is None else vote
    candidates = []
    for downgrade_weight, policy in rule_options(targets, cost):
        routed, _, tier_probs = policy.apply(shares, rank, pred=pred, confidence=confidence, margin=margin)
        scores = abstain_scores(targets.criterion, tier_probs, routed, confidence, margin, calibrate=calibrate)
        candidates.append(_best_on_curve(policy, downgrade_weight, scores, routed, true_rank, targets=targets,
                                         weights=weights))
    return _simplest_within_one_se(candidates, weights).point()
