"""Operating points: abstain curves and fitting a policy's threshold to a target (numpy only).

Every rate is computed on out-of-sample (leave-one-out or out-of-fold)
predictions of the pool, optionally reweighted to a traffic mix per true
tier (:func:`mix_weights`). Abstained messages go to the label source: they
count as routed correctly and never as a downgrade or upgrade.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import config as _config
from ..core.knn import decide
from ..core.policy import POLICIES, DecisionPolicy, abstain_scores, weighted_cost
from ..errors import ConfigError
from .savings import normalize_mix

__all__ = ["OperatingPoint", "mix_weights", "abstain_curve", "paired_standard_error", "fit_operating_point"]


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
    s = np.asarray(scores, np.float64)
    t, r = np.asarray(true_rank), np.asarray(routed_rank)
    n = len(s)
    if n == 0:
        raise ConfigError("abstain_curve needs at least one prediction")
    w_all = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    order = np.argsort(s, kind="stable")
    s_sorted, wt = s[order], w_all[order]
    wrong, down, up = (r != t)[order] * wt, (r < t)[order] * wt, (r > t)[order] * wt
    # threshold s_sorted[i] abstains on every row with a smaller score
    thresholds = np.unique(np.concatenate([[0.0], s_sorted, [np.nextafter(s_sorted[-1], np.inf)]]))
    n_abst = np.searchsorted(s_sorted, thresholds, side="left")
    cum = lambda a: np.concatenate([[0], np.cumsum(a)])  # noqa: E731
    w, d, u, m = cum(wrong), cum(down), cum(up), cum(wt)
    wrong_kept, down_kept, up_kept = w[-1] - w[n_abst], d[-1] - d[n_abst], u[-1] - u[n_abst]
    abstained = m[n_abst]
    answered = m[-1] - abstained
    with np.errstate(invalid="ignore", divide="ignore"):
        ans_acc = np.where(answered > 1e-15, 1.0 - wrong_kept / np.maximum(answered, 1e-15), np.nan)
    return {"threshold": thresholds, "abstain_rate": abstained, "tier_accuracy": 1.0 - wrong_kept,
            "answered_tier_accuracy": ans_acc, "downgrade_rate": down_kept, "upgrade_rate": up_kept}


def fit_operating_point(shares, labels, class_tier_rank, cost=None, *, policy="cost",
                        criterion=_config.ABSTAIN_CRITERION, max_downgrade=None, max_abstain=None,
                        downgrade_weights=_config.DOWNGRADE_WEIGHTS,
                        weights=None, confidence=None, margin=None, pred=None, calibrate=None):
    """Choose the abstain threshold (and downgrade weight) for a target on out-of-sample predictions.

    Every (downgrade weight, threshold) pair meeting the targets is a
    candidate. With a ``max_downgrade`` target the winner routes the largest
    share of traffic correctly *by itself* (``tier_accuracy - abstain_rate``:
    abstaining and upgrading are the prices paid for fewer downgrades); with
    only ``max_abstain`` it has the highest tier accuracy counting abstained
    messages as handled correctly by the categorizer. Ties go to fewer
    downgrades, then less abstention. When nothing meets the targets, the
    point with the fewest downgrades within the abstain budget is returned
    with ``met=False``.

    Across decision rules (plain voting, then the cost-aware tier by
    increasing downgrade weight) the *simplest* rule whose best point is
    within one paired standard error of the overall best wins (the
    one-standard-error rule): a cost-aware rule must earn its departure from
    plain voting by more than fold noise. It is also the rule whose effect
    the folds understate: on messages unlike the pool's, votes are less
    confident, so a cost-aware rule moves many more of them up a tier than
    it does in the folds (``benchmarks/generalisation.py``).

    Parameters
    ----------
    shares : (n, n_categories) out-of-sample (leave-one-out) vote shares
    labels : (n,) true category indices
    class_tier_rank : (n_categories,) tier rank per category
    cost : (n_tiers, n_tiers) array, optional
        Required unless ``policy="vote"``.
    policy : {"cost", "vote", "any"}
        ``any`` tries plain voting as well as the cost-aware policy.
    criterion : {"tier_confidence", "confidence", "margin"}
    max_downgrade, max_abstain : float, optional
        Targets as shares of all messages; at least one is required.
    downgrade_weights : sequence of float
        Multipliers of the downgrade costs to try (cost-aware policy only).
    weights : (n,) array, optional
        Per-message weights, e.g. :func:`mix_weights` to fit for a user's
        traffic mix instead of the pool's own; rates are then on that mix.
    confidence, margin, pred : arrays, optional
        The category vote's winner, share and margin (computed when not given).
    calibrate : Calibration, optional
        Maps the ``tier_confidence`` score first, so the threshold is a calibrated probability.

    Returns
    -------
    OperatingPoint
    """
    if max_downgrade is None and max_abstain is None:
        raise ConfigError("fit_operating_point needs a target: max_downgrade and/or max_abstain")
    for name, v in (("max_downgrade", max_downgrade), ("max_abstain", max_abstain)):
        if v is not None and not 0.0 <= v <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1]; got {v!r}")
    if policy not in POLICIES + ("any",):
        raise ConfigError(f"policy must be one of {POLICIES + ('any',)}; got {policy!r}")
    rank = np.asarray(class_tier_rank, np.int64)
    true_rank = rank[np.asarray(labels)]
    if pred is None or confidence is None or margin is None:
        pred, confidence, margin = decide(shares, rank)
    options = ([("vote", 1.0)] if policy in ("vote", "any") else []) + \
              ([("cost", float(w)) for w in downgrade_weights] if policy in ("cost", "any") else [])
    per_rule = []  # per decision rule: (key, (name, w, base, curve, i, met), per-message objective)
    for name, w in options:
        base = DecisionPolicy(name, weighted_cost(cost, w).tolist() if name == "cost" else None, criterion)
        routed, _, probs = base.apply(shares, rank, pred=pred, confidence=confidence, margin=margin)
        scores = abstain_scores(criterion, probs, routed, confidence, margin, calibrate=calibrate)
        curve = abstain_curve(scores, true_rank, routed, weights=weights)
        a, d, u, acc = curve["abstain_rate"], curve["downgrade_rate"], curve["upgrade_rate"], curve["tier_accuracy"]
        ok_a = np.ones(len(a), bool) if max_abstain is None else a <= max_abstain + 1e-12
        ok = ok_a & (True if max_downgrade is None else d <= max_downgrade + 1e-12)
        objective = acc - a if max_downgrade is not None else acc
        rule_key, rule = None, None
        for i in np.flatnonzero(ok if ok.any() else ok_a):
            met = bool(ok.any())
            # rounded: abstaining on a wrong message leaves the objective unchanged, so plateaus are common
            key = (met, round(float(objective[i] if met else -d[i]), 9), -d[i], -a[i], -u[i])
            if rule_key is None or key > rule_key:
                rule_key, rule = key, (name, w, base, curve, int(i), met)
        abstained = np.asarray(scores) < curve["threshold"][rule[4]]
        right = routed == true_rank
        per_rule.append((rule_key, rule, (~abstained & right) if max_downgrade is not None else (abstained | right)))
    best_key, best, best_msgs = max(per_rule, key=lambda r: r[0])
    if best_key[0]:  # targets met: the simplest rule within one paired standard error of the best
        for key, rule, msgs in per_rule:
            if key[0] and best_key[1] - key[1] <= paired_standard_error(msgs, best_msgs, weights) + 1e-12:
                best = rule
                break
    name, w, base, curve, i, met = best
    thr = float(curve["threshold"][i])
    # a fitted policy keeps its threshold even at 0 (never abstains): the pool still says it was fitted to abstain
    pol = DecisionPolicy(base.name, base.cost, criterion, thr)
    return OperatingPoint(pol, w, float(curve["abstain_rate"][i]), float(curve["downgrade_rate"][i]),
                          float(curve["upgrade_rate"][i]), float(curve["tier_accuracy"][i]),
                          float(curve["answered_tier_accuracy"][i]), met)
