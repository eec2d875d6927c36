"""Decision policies: from neighbour votes to a tier, aware of what a mistake costs (numpy only).

The neighbours' category vote shares are summed per tier into tier
probabilities. The *cost-aware* tier minimises the expected cost
``sum_i p_i * C[i, j]`` under the cost matrix ``C[true tier, routed tier]``
(defaults in ``data/taxonomy.yaml``: a downgrade costs more than an
upgrade). With the 0/1 cost this is plain voting over tiers; it differs
from the winning category's tier only when a tier's votes are split over
several of its categories (see :func:`tier_probabilities`).

A policy may *abstain* when its score (the chosen tier's probability, the
top category share, or the category margin) is below a threshold: the
router then returns its best guess with ``abstain=True`` so production can
ask the LLM categorizer for just those messages. :func:`fit_operating_point`
chooses the threshold (and a downgrade weight) for a target such as "at
most 2% downgrades" or "abstain on at most 10% of traffic" on
leave-one-out predictions.

The router imports this module: it must stay numpy-only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

__all__ = ["POLICIES", "CRITERIA", "DecisionPolicy", "OperatingPoint", "tier_probabilities", "expected_costs",
           "cost_aware_tiers", "weighted_cost", "abstain_scores", "abstain_curve", "fit_operating_point",
           "linear_shares"]

POLICIES = ("vote", "cost")
CRITERIA = ("tier_confidence", "confidence", "margin")


def tier_probabilities(shares, class_tier_rank, n_tiers=None):
    """Per-tier probabilities: the category vote shares summed per tier.

    Parameters
    ----------
    shares : (n, n_categories) array, rows summing to 1
    class_tier_rank : (n_categories,) int array, tier rank of each category
    n_tiers : int, optional
        Default: highest rank + 1.
    """
    shares = np.asarray(shares, np.float64)
    rank = np.asarray(class_tier_rank, np.int64)
    n_tiers = int(n_tiers or rank.max() + 1)
    onehot = np.zeros((len(rank), n_tiers))
    onehot[np.arange(len(rank)), rank] = 1.0
    return shares @ onehot


def expected_costs(tier_probs, cost):
    """``E[cost | route to tier j] = sum_i p_i * C[i, j]``, shape (n, n_tiers)."""
    return np.asarray(tier_probs, np.float64) @ np.asarray(cost, np.float64)


def cost_aware_tiers(tier_probs, cost):
    """Tier rank minimising the expected cost; ties go to the stronger tier (as in voting)."""
    ec = expected_costs(tier_probs, cost)
    best = ec.min(axis=1, keepdims=True)
    tied = ec <= best + 1e-9
    return (tied.shape[1] - 1 - np.argmax(tied[:, ::-1], axis=1)).astype(np.int64)


def weighted_cost(cost, downgrade_weight=1.0):
    """``cost`` with every downgrade entry (routed tier below the true tier) multiplied by ``downgrade_weight``."""
    c = np.array(cost, np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ConfigError(f"cost must be a square matrix; got shape {c.shape}")
    if not downgrade_weight > 0:
        raise ConfigError(f"downgrade_weight must be > 0; got {downgrade_weight!r}")
    low = np.tril(np.ones_like(c, dtype=bool), -1)
    c[low] *= downgrade_weight
    return c


def abstain_scores(criterion, tier_probs, routed_rank, confidence, margin):
    """The score an abstain threshold is compared with (abstain when score < threshold)."""
    if criterion == "tier_confidence":
        return np.asarray(tier_probs)[np.arange(len(routed_rank)), routed_rank]
    if criterion == "confidence":
        return np.asarray(confidence, np.float64)
    if criterion == "margin":
        return np.asarray(margin, np.float64)
    raise ConfigError(f"criterion must be one of {CRITERIA}; got {criterion!r}")


def linear_shares(vectors, coef, intercept):
    """Class probabilities of a linear (logistic-regression) head: softmax(x @ coef.T + intercept)."""
    z = np.asarray(vectors, np.float64) @ np.asarray(coef, np.float64).T + np.asarray(intercept, np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class DecisionPolicy:
    """How a router turns vote shares into a tier, and when it abstains.

    Parameters
    ----------
    name : {"vote", "cost"}
        ``vote``: the winning category's tier. ``cost``: the tier of least
        expected cost under ``cost``.
    cost : list of lists, optional
        ``C[true tier rank][routed tier rank]``; required for ``cost``.
    criterion : {"tier_confidence", "confidence", "margin"}
        Score compared with ``threshold``.
    threshold : float, optional
        Abstain when the score is below it; ``None`` never abstains.
    """

    name: str = "vote"
    cost: tuple = None
    criterion: str = "tier_confidence"
    threshold: float = None

    def __post_init__(self):
        if self.name not in POLICIES:
            raise ConfigError(f"policy must be one of {POLICIES}; got {self.name!r}")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"criterion must be one of {CRITERIA}; got {self.criterion!r}")
        if self.name == "cost" and self.cost is None:
            raise ConfigError("policy 'cost' needs a cost matrix")
        if self.cost is not None:
            c = np.asarray(self.cost, np.float64)
            if c.ndim != 2 or c.shape[0] != c.shape[1] or not np.isfinite(c).all():
                raise ConfigError(f"cost must be a finite square matrix; got {self.cost!r}")
            object.__setattr__(self, "cost", tuple(tuple(float(v) for v in row) for row in c))
        if self.threshold is not None and not 0.0 <= float(self.threshold) <= 1.0:
            raise ConfigError(f"abstain threshold must be in [0, 1]; got {self.threshold!r}")

    @property
    def abstains(self) -> bool:
        return self.threshold is not None

    def apply(self, shares, class_tier_rank, n_tiers=None, *, pred=None, confidence=None, margin=None):
        """Tier decision for each row of vote ``shares``.

        Parameters
        ----------
        shares : (n, n_categories) vote shares
        class_tier_rank : (n_categories,) tier rank of each category
        pred, confidence, margin : arrays, optional
            The category vote's winner, share and margin (from
            :func:`workbench.knn.decide`); computed when not given.

        Returns
        -------
        routed_rank : int array (n,)
        abstain : bool array (n,)
        tier_probs : (n, n_tiers) array
        """
        from .knn import decide

        rank = np.asarray(class_tier_rank, np.int64)
        if pred is None or confidence is None or margin is None:
            pred, confidence, margin = decide(shares, rank)
        probs = tier_probabilities(shares, rank, n_tiers)
        routed = cost_aware_tiers(probs, self.cost) if self.name == "cost" else rank[np.asarray(pred)]
        if self.threshold is None:
            abstain = np.zeros(len(routed), bool)
        else:
            abstain = abstain_scores(self.criterion, probs, routed, confidence, margin) < self.threshold
        return routed, abstain, probs

    def to_metadata(self) -> dict:
        """JSON-ready form stored in pool.npz metadata under ``policy``."""
        return {"name": self.name, "cost": None if self.cost is None else [list(r) for r in self.cost],
                "criterion": self.criterion, "threshold": None if self.threshold is None else float(self.threshold)}

    @classmethod
    def from_metadata(cls, d) -> "DecisionPolicy":
        if not d:
            return cls()
        return cls(d.get("name", "vote"), d.get("cost"), d.get("criterion", "tier_confidence"), d.get("threshold"))


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


def abstain_curve(scores, true_rank, routed_rank):
    """Rates at every distinct abstain threshold, from never abstaining to always.

    Abstained messages go to the label source, so they count as routed
    correctly in ``tier_accuracy`` and never as a downgrade or upgrade.

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
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    wrong, down, up = (r != t)[order], (r < t)[order], (r > t)[order]
    # threshold s_sorted[i] abstains on every row with a smaller score
    thresholds = np.unique(np.concatenate([[0.0], s_sorted, [np.nextafter(s_sorted[-1], np.inf)]]))
    n_abst = np.searchsorted(s_sorted, thresholds, side="left")
    cum = lambda a: np.concatenate([[0], np.cumsum(a)])  # noqa: E731
    w, d, u = cum(wrong), cum(down), cum(up)
    wrong_kept, down_kept, up_kept = w[-1] - w[n_abst], d[-1] - d[n_abst], u[-1] - u[n_abst]
    answered = n - n_abst
    with np.errstate(invalid="ignore", divide="ignore"):
        ans_acc = np.where(answered > 0, 1.0 - wrong_kept / np.maximum(answered, 1), np.nan)
    return {"threshold": thresholds, "abstain_rate": n_abst / n, "tier_accuracy": 1.0 - wrong_kept / n,
            "answered_tier_accuracy": ans_acc, "downgrade_rate": down_kept / n, "upgrade_rate": up_kept / n}


def fit_operating_point(shares, labels, class_tier_rank, cost=None, *, policy="cost", criterion="tier_confidence",
                        max_downgrade=None, max_abstain=None, downgrade_weights=(0.25, 0.5, 1.0, 2.0),
                        confidence=None, margin=None, pred=None):
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
    confidence, margin, pred : arrays, optional
        The category vote's winner, share and margin (computed when not given).

    Returns
    -------
    OperatingPoint
    """
    from .knn import decide

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
    best_key, best = None, None
    for name, w in options:
        base = DecisionPolicy(name, weighted_cost(cost, w).tolist() if name == "cost" else None, criterion)
        routed, _, probs = base.apply(shares, rank, pred=pred, confidence=confidence, margin=margin)
        curve = abstain_curve(abstain_scores(criterion, probs, routed, confidence, margin), true_rank, routed)
        a, d, u, acc = curve["abstain_rate"], curve["downgrade_rate"], curve["upgrade_rate"], curve["tier_accuracy"]
        ok_a = np.ones(len(a), bool) if max_abstain is None else a <= max_abstain + 1e-12
        ok = ok_a & (True if max_downgrade is None else d <= max_downgrade + 1e-12)
        objective = acc - a if max_downgrade is not None else acc
        for i in np.flatnonzero(ok if ok.any() else ok_a):
            met = bool(ok.any())
            key = (met, objective[i] if met else -d[i], -d[i], -a[i], -u[i])
            if best_key is None or key > best_key:
                best_key, best = key, (name, w, base, curve, int(i), met)
    name, w, base, curve, i, met = best
    thr = float(curve["threshold"][i])
    pol = DecisionPolicy(base.name, base.cost, criterion, thr if thr > 0 else None)
    return OperatingPoint(pol, w, float(curve["abstain_rate"][i]), float(curve["downgrade_rate"][i]),
                          float(curve["upgrade_rate"][i]), float(curve["tier_accuracy"][i]),
                          float(curve["answered_tier_accuracy"][i]), met)
