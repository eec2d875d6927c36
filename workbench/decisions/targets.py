"""What an export aims for, as two objects: the decision :class:`Targets` and the :class:`HeadParams` of the heads.

Built once (from the CLI options, a notebook's parameters, or a test) and
validated once in ``__post_init__``, as :class:`~workbench.core.knn.KNNConfig`
is; the export, the head choice, the out-of-sample predictions and the
operating-point fit take them instead of a dozen loose arguments.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .. import config as _config
from ..core.follow_up import FollowUpDetector
from ..core.policy import CRITERIA, POLICIES
from ..errors import ConfigError

__all__ = ["Targets", "HeadParams", "ANY_POLICY"]

#: The policy name that lets the operating-point fit choose among every registered policy.
ANY_POLICY = "any"


def _fraction_or_none(name, value):
    if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{name} must be in [0, 1]; got {value!r}")


@dataclass(frozen=True)
class Targets:
    """The decision policy to fit or apply, and what it is fitted for.

    Parameters
    ----------
    policy : str
        A key of :data:`workbench.core.policy.POLICIES`, or ``"any"``: the fit
        tries every registered policy and keeps the simplest within one paired
        standard error of the best. Without a target ``"any"`` is plain voting.
    criterion : {"tier_confidence", "confidence", "margin"}
        Score compared with the abstain threshold.
    threshold : float, optional
        A fixed abstain threshold. It replaces the targets: ``max_abstain``
        (whose default is a target) is dropped; ``max_downgrade`` with it is an error.
    max_downgrade, max_abstain : float, optional
        Targets as shares of traffic; both None and no threshold: the pool never abstains.
    downgrade_weights : tuple of float
        Multipliers of the downgrade costs the fit tries (policies that use the cost matrix).
    traffic_mix : dict tier -> share, optional
        Fit the targets on this mix instead of the pool's own.
    calibration : {"auto", "none", "temperature", "isotonic"}
        Map tier confidence to a probability (``auto``: when it lowers the expected calibration error).
    """

    policy: str = _config.DECISION_POLICY
    criterion: str = _config.ABSTAIN_CRITERION
    threshold: float = None
    max_downgrade: float = _config.MAX_DOWNGRADE
    max_abstain: float = _config.MAX_ABSTAIN
    downgrade_weights: tuple = _config.DOWNGRADE_WEIGHTS
    traffic_mix: dict = None
    calibration: str = _config.CALIBRATION

    def __post_init__(self):
        if self.policy not in tuple(POLICIES) + (ANY_POLICY,):
            raise ConfigError(f"policy must be one of {tuple(POLICIES) + (ANY_POLICY,)}; got {self.policy!r}")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"criterion must be one of {CRITERIA}; got {self.criterion!r}")
        for name in ("threshold", "max_downgrade", "max_abstain"):
            _fraction_or_none(name, getattr(self, name))
        if self.threshold is not None and self.max_downgrade is not None:
            raise ConfigError("give either an abstain threshold or a target (max_downgrade / max_abstain), not both")
        weights = tuple(self.downgrade_weights)
        if not weights or not all(isinstance(w, (int, float)) and w > 0 for w in weights):
            raise ConfigError(f"downgrade_weights must be numbers > 0; got {self.downgrade_weights!r}")
        if self.calibration != "auto" and self.calibration not in _config.CALIBRATION_METHODS:
            raise ConfigError(f"calibration must be 'auto' or one of {_config.CALIBRATION_METHODS}; "
                              f"got {self.calibration!r}")
        object.__setattr__(self, "downgrade_weights", weights)
        if self.threshold is not None:  # a fixed threshold replaces the (default) abstain target
            object.__setattr__(self, "max_abstain", None)
        if self.policy == ANY_POLICY and not self.fits:  # nothing to choose by
            object.__setattr__(self, "policy", "vote")

    @property
    def fits(self) -> bool:
        """Whether there is a target to fit the threshold (and policy) for."""
        return self.max_downgrade is not None or self.max_abstain is not None

    def with_(self, **changes) -> "Targets":
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class HeadParams:
    """How the heads are trained and compared: folds, seed, regularisation, blend weight.

    Parameters
    ----------
    C : float
        Inverse regularisation of the logistic-regression head.
    blend_weight : float
        Weight of the linear part of the ``blend`` head, in [0, 1].
    seed : int
        Folds of the out-of-fold predictions and of the head comparison.
    n_splits : int
        Stratified folds (at least 2).
    follow_up : FollowUpDetector, optional
        The conversations' follow-up detector the export stores with the heads (fitted on labelled
        conversations by :func:`workbench.analysis.conversations.fit_follow_up`); None: the pool has none.
    """

    C: float = _config.LOGREG_C
    blend_weight: float = _config.BLEND_WEIGHT
    seed: int = _config.SEED
    n_splits: int = _config.N_SPLITS
    follow_up: object = None

    def __post_init__(self):
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ConfigError(f"C must be > 0; got {self.C!r}")
        if not (isinstance(self.blend_weight, (int, float)) and 0.0 <= self.blend_weight <= 1.0):
            raise ConfigError(f"blend_weight must be in [0, 1]; got {self.blend_weight!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0; got {self.seed!r}")
        if not isinstance(self.n_splits, int) or self.n_splits < 2:
            raise ConfigError(f"n_splits must be an integer >= 2; got {self.n_splits!r}")
        if self.follow_up is not None and not isinstance(self.follow_up, FollowUpDetector):
            raise ConfigError(f"follow_up must be a FollowUpDetector or None; got {type(self.follow_up).__name__}")

    def fit_kwargs(self) -> dict:
        """Keyword arguments of :func:`workbench.analysis.heads.fit_head`."""
        return {"C": self.C, "seed": self.seed, "blend_weight": self.blend_weight}
