"""Calibrated tier confidence: the probability that the routed tier is right (numpy only).

A router's raw *tier confidence* is the routed tier's share of the head's
probabilities. A k-NN vote of 45 neighbours that all agree says 1.0 even
where such messages are routed right 95% of the time, so the raw number is
not a probability, and an abstain threshold means something different in
every pool. A :class:`Calibration` fitted on out-of-fold predictions
(:mod:`workbench.analysis.calibration`) maps the raw score to the observed
accuracy; the router reports the mapped value as ``confidence`` and compares
it with the abstain threshold.

Methods, all monotone (they never reorder messages, so an abstain threshold
on the raw score has an equivalent on the calibrated one):

- ``none``: the raw score;
- ``temperature``: ``sigmoid(logit(score) / T)``, one parameter;
- ``isotonic``: a non-decreasing step function through ``(x, y)`` knots,
  interpolated linearly between them.

Stored in pool.npz as ``calibration_*`` arrays named by the metadata key
``calibration``.
"""
from __future__ import annotations

import numpy as np

from ..errors import ArtifactError, ConfigError

__all__ = ["CALIBRATIONS", "Calibration"]

CALIBRATIONS = ("none", "temperature", "isotonic")
_EPS = 1e-6


def _logit(p):
    p = np.clip(np.asarray(p, np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


class Calibration:
    """A monotone map from a raw tier-confidence score to a probability.

    Parameters
    ----------
    method : {"none", "temperature", "isotonic"}
    temperature : float
        ``T`` of the temperature method (> 0).
    x, y : 1-D arrays
        Knots of the isotonic method: ``x`` increasing, ``y`` non-decreasing in [0, 1].
    """

    def __init__(self, method="none", *, temperature=1.0, x=None, y=None):
        self.method = method
        self.temperature = temperature
        self.x = x
        self.y = y
        self._check()

    def _check(self):
        if self.method not in CALIBRATIONS:
            raise ConfigError(f"calibration must be one of {CALIBRATIONS}; got {self.method!r}")
        if self.method == "temperature" and not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"calibration temperature must be > 0; got {self.temperature!r}")
        if self.method == "isotonic":
            x, y = np.asarray(self.x, np.float64), np.asarray(self.y, np.float64)
            if x.ndim != 1 or x.shape != y.shape or len(x) < 1:
                raise ConfigError(f"isotonic knots must be two 1-D arrays of one length; got {x.shape} and {y.shape}")
            if not (np.isfinite(x).all() and np.isfinite(y).all()) or (np.diff(x) <= 0).any() \
                    or (np.diff(y) < -1e-12).any() or y.min() < 0 or y.max() > 1:
                raise ConfigError("isotonic knots must have increasing x and non-decreasing y in [0, 1]")
            self.x, self.y = x, y

    def transform(self, scores):
        """Calibrated probabilities of raw ``scores`` (same shape)."""
        s = np.asarray(scores, np.float64)
        if self.method == "temperature":
            return 1.0 / (1.0 + np.exp(-_logit(s) / self.temperature))
        if self.method == "isotonic":
            return np.interp(s, self.x, self.y)
        return s

    __call__ = transform

    def arrays(self) -> dict:
        """The ``calibration_*`` arrays pool.npz stores."""
        if self.method == "temperature":
            return {"calibration_temperature": np.array([self.temperature], np.float64)}
        if self.method == "isotonic":
            return {"calibration_x": self.x.astype(np.float64), "calibration_y": self.y.astype(np.float64)}
        return {}

    @classmethod
    def from_arrays(cls, method, arrays):
        """Rebuild from a pool's metadata ``calibration`` name and its arrays."""
        method = method or "none"
        try:
            if method == "temperature":
                return cls(method, temperature=float(np.asarray(arrays["calibration_temperature"]).reshape(-1)[0]))
            if method == "isotonic":
                return cls(method, x=arrays["calibration_x"], y=arrays["calibration_y"])
            return cls(method)
        except KeyError as e:
            raise ArtifactError(f"pool metadata says calibration={method!r} but array {e.args[0]!r} is missing") from None
        except ConfigError as e:
            raise ArtifactError(f"bad calibration arrays: {e}") from None

    def __repr__(self):
        extra = {"temperature": f", temperature={self.temperature:.3g}",
                 "isotonic": f", knots={0 if self.x is None else len(self.x)}"}.get(self.method, "")
        return f"Calibration({self.method!r}{extra})"
