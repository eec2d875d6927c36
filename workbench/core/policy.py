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
ask the LLM categorizer for just those messages.
:func:`workbench.decisions.operating_point.fit_operating_point` chooses the threshold
(and a downgrade weight) for a target such as "at most 2% downgrades" or
"abstain on at most 10% of traffic" on leave-one-out predictions.

The router imports this module: it must stay numpy-only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .knn import decide

__all__ = ["POLICIES", "CRITERIA", "TierPolicy", "VotePolicy", "CostPolicy", "DecisionPolicy", "tier_probabilities",
           "expected_costs", "cost_aware_tiers", "weighted_cost", "abstain_scores"]

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


class TierPolicy:
    """A decision policy: how tier probabilities become a tier, and the variants an operating-point fit tries.

    To add a policy: a subclass with a ``name`` and :meth:`route` (and
    :meth:`variants` if the fit should try several settings of it),
    registered in :data:`POLICIES`. Its only stored parameter is the cost
    matrix (``needs_cost``), kept in pool.npz by :class:`DecisionPolicy`.

    Parameters
    ----------
    cost : (n_tiers, n_tiers) array-like, optional
        ``C[true tier rank][routed tier rank]``; required when ``needs_cost``.
    """

    name = ""
    needs_cost = False

    def __init__(self, cost=None):
        if cost is None and self.needs_cost:
            raise ConfigError(f"policy {self.name!r} needs a cost matrix")
        if cost is not None:
            matrix = np.asarray(cost, np.float64)
            if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.isfinite(matrix).all():
                raise ConfigError(f"cost must be a finite square matrix; got {cost!r}")
            cost = tuple(tuple(float(v) for v in row) for row in matrix)
        self.cost = cost

    def route(self, tier_probs, vote_rank):
        """Routed tier rank per row of ``tier_probs`` (``vote_rank``: the winning category's tier rank)."""
        raise NotImplementedError

    @classmethod
    def variants(cls, cost, downgrade_weights):
        """``(downgrade weight, policy)`` pairs an operating-point fit tries, simplest first (default: one)."""
        return [(1.0, cls(cost if cls.needs_cost else None))]


class VotePolicy(TierPolicy):
    """The winning category's tier (plain voting)."""

    name = "vote"

    def route(self, tier_probs, vote_rank):
        return np.asarray(vote_rank, np.int64)


class CostPolicy(TierPolicy):
    """The tier of least expected cost under the cost matrix; the fit tries each downgrade weight."""

    name = "cost"
    needs_cost = True

    def route(self, tier_probs, vote_rank):
        return cost_aware_tiers(tier_probs, self.cost)

    @classmethod
    def variants(cls, cost, downgrade_weights):
        return [(float(w), cls(weighted_cost(cost, w).tolist())) for w in downgrade_weights]


#: Policy name -> class, simplest first: ``policy="any"`` fits try them in this order, and the simplest within one
#: paired standard error of the best wins.
POLICIES = {VotePolicy.name: VotePolicy, CostPolicy.name: CostPolicy}


def abstain_scores(criterion, tier_probs, routed_rank, confidence, margin, *, calibrate=None):
    """The score an abstain threshold is compared with (abstain when score < threshold).

    ``calibrate`` (a :class:`~workbench.core.calibration.Calibration` or any
    monotone callable) maps the ``tier_confidence`` score to a probability.
    """
    if criterion == "tier_confidence":
        raw = np.asarray(tier_probs)[np.arange(len(routed_rank)), routed_rank]
        return raw if calibrate is None else np.asarray(calibrate(raw), np.float64)
    if criterion == "confidence":
        return np.asarray(confidence, np.float64)
    if criterion == "margin":
        return np.asarray(margin, np.float64)
    raise ConfigError(f"criterion must be one of {CRITERIA}; got {criterion!r}")


@dataclass(frozen=True)
class DecisionPolicy:
    """How a router turns vote shares into a tier, and when it abstains: a registered policy, a criterion, a threshold.

    Parameters
    ----------
    name : str
        A key of :data:`POLICIES`: ``vote`` (the winning category's tier),
        ``cost`` (the tier of least expected cost under ``cost``), ...
    cost : list of lists, optional
        ``C[true tier rank][routed tier rank]``; required by a policy that ``needs_cost``.
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
            raise ConfigError(f"policy must be one of {tuple(POLICIES)}; got {self.name!r}")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"criterion must be one of {CRITERIA}; got {self.criterion!r}")
        rule = POLICIES[self.name](self.cost)
        object.__setattr__(self, "cost", rule.cost)
        object.__setattr__(self, "_rule", rule)  # not a field: equality and the metadata stay name/cost/criterion/threshold
        if self.threshold is not None and not 0.0 <= float(self.threshold) <= 1.0:
            raise ConfigError(f"abstain threshold must be in [0, 1]; got {self.threshold!r}")

    @property
    def rule(self) -> TierPolicy:
        """The registered policy object that routes the tier probabilities."""
        return self._rule

    @property
    def abstains(self) -> bool:
        return self.threshold is not None

    def apply(self, shares, class_tier_rank, n_tiers=None, *, pred=None, confidence=None, margin=None,
              calibrate=None):
        """Tier decision for each row of vote ``shares``.

        Parameters
        ----------
        shares : (n, n_categories) vote shares
        class_tier_rank : (n_categories,) tier rank of each category
        pred, confidence, margin : arrays, optional
            The category vote's winner, share and margin (from
            :func:`workbench.core.knn.decide`); computed when not given.
        calibrate : callable, optional
            Maps the ``tier_confidence`` score before it meets the threshold (see :func:`abstain_scores`).

        Returns
        -------
        routed_rank : int array (n,)
        abstain : bool array (n,)
        tier_probs : (n, n_tiers) array
        """
        rank = np.asarray(class_tier_rank, np.int64)
        if pred is None or confidence is None or margin is None:
            pred, confidence, margin = decide(shares, rank)
        probs = tier_probabilities(shares, rank, n_tiers)
        routed = self.rule.route(probs, rank[np.asarray(pred)])
        if self.threshold is None:
            abstain = np.zeros(len(routed), bool)
        else:
            abstain = abstain_scores(self.criterion, probs, routed, confidence, margin,
                                     calibrate=calibrate) < self.threshold
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
