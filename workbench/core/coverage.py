"""Confidence that falls where the pool does not cover: a cap from the pool's own nearest-neighbour similarities.

A calibrated confidence is learned on messages like the pool's own, so a
message unlike anything in it (a hex dump, letter salad) still gets the
confidence of a unanimous vote. The pool itself says how covered a message
is: each pool message's similarity to its nearest *other* pool message (in
the space the router compares) is a sample of "how close does traffic like
the pool's come to the pool". A new message whose nearest similarity ``s``
has the empirical rank ``F(s)`` (the share of pool messages less covered than
it) is as covered as the pool is below ``F(s) = level`` only rarely; its
confidence is multiplied by ``min(1, F(s) / level)``: 1 for the bulk of the
pool, falling linearly to 0 below every pool message's nearest similarity.
Monotone in ``s``, so it never reorders two messages of one vote. The router
multiplies the reported confidence by it; abstaining stays the fitted
policy's decision on the calibrated vote (see ``workbench.config.COVERAGE_LEVEL``
for the evidence).

Stored in pool.npz as ``calibration_coverage`` (quantiles of the pool's
leave-one-out nearest similarities) and the metadata key ``coverage``
(``{"level": ...}``); a pool without them gets no cap (factor 1).
"""
from __future__ import annotations

import numpy as np

from ..errors import ArtifactError, ConfigError

__all__ = ["CoverageCap", "COVERAGE_KNOTS"]

#: Quantiles of the pool's nearest similarities stored (0%, 1%, ..., 100%).
COVERAGE_KNOTS = 101


class CoverageCap:
    """Multiplies a confidence by how covered a message is, by the pool's own nearest similarities.

    Parameters
    ----------
    quantiles : 1-D array, optional
        Non-decreasing quantiles (at evenly spaced ranks 0..1) of the pool's leave-one-out nearest-neighbour
        similarities; None: no cap.
    level : float
        Empirical rank below which the confidence is scaled down, in (0, 1].
    """

    def __init__(self, quantiles=None, *, level=0.05):
        self.quantiles = quantiles
        self.level = level
        self._check()

    def _check(self):
        if not (isinstance(self.level, (int, float)) and 0 < self.level <= 1):
            raise ConfigError(f"coverage level must be in (0, 1]; got {self.level!r}")
        if self.quantiles is None:
            return
        q = np.asarray(self.quantiles, np.float64)
        if q.ndim != 1 or len(q) < 2 or not np.isfinite(q).all() or (np.diff(q) < 0).any():
            raise ConfigError("coverage quantiles must be a 1-D non-decreasing finite array of at least 2 values")
        self.quantiles = q

    @classmethod
    def fit(cls, nearest_similarities, *, level=0.05, knots=COVERAGE_KNOTS):
        """From the pool's leave-one-out nearest similarities."""
        sims = np.asarray(nearest_similarities, np.float64)
        sims = sims[np.isfinite(sims)]
        if len(sims) < 2:
            raise ConfigError(f"coverage needs at least 2 finite nearest similarities; got {len(sims)}")
        return cls(np.quantile(sims, np.linspace(0.0, 1.0, knots)), level=level)

    @property
    def active(self) -> bool:
        return self.quantiles is not None

    def rank(self, similarities):
        """Empirical rank ``F(s)`` in [0, 1] of each similarity among the pool's (interpolated between quantiles)."""
        s = np.asarray(similarities, np.float64)
        q = self.quantiles
        ranks = np.linspace(0.0, 1.0, len(q))
        # np.interp needs increasing x: ties among quantiles keep their highest rank
        x, last = np.unique(q[::-1], return_index=True)
        return np.interp(np.nan_to_num(s, nan=-np.inf), x, ranks[::-1][last], left=0.0, right=1.0)

    def factor(self, similarities):
        """``min(1, F(s) / level)`` per similarity (1 everywhere when the pool stores no coverage)."""
        s = np.asarray(similarities, np.float64)
        if not self.active:
            return np.ones(s.shape)
        return np.minimum(1.0, self.rank(s) / self.level)

    def arrays(self) -> dict:
        return {} if not self.active else {"calibration_coverage": self.quantiles.astype(np.float64)}

    def to_metadata(self):
        return None if not self.active else {"level": float(self.level), "statistic": "nearest_similarity"}

    @classmethod
    def from_arrays(cls, meta, arrays):
        """From the metadata ``coverage`` and its array (no cap when the pool has neither)."""
        if not meta:
            return cls()
        try:
            return cls(arrays["calibration_coverage"], level=meta.get("level"))
        except KeyError:
            raise ArtifactError("pool metadata has coverage but array 'calibration_coverage' is missing") from None
        except (ConfigError, AttributeError) as e:
            raise ArtifactError(f"bad coverage: {e}") from None

    def __repr__(self):
        return "CoverageCap(none)" if not self.active else f"CoverageCap(level={self.level:g})"
