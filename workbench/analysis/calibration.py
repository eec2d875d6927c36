"""Is a router's confidence a probability? Reliability tables, expected calibration error, and fitting a calibration.

Everything here works on out-of-sample predictions: a *score* per message
(the raw tier confidence) and whether the routed tier was right. The
reliability table bins the scores (equal widths on [0, 1]) and sets each
bin's mean score against its accuracy; the expected calibration error (ECE)
is the message-weighted mean gap, ``sum_b n_b / n * |accuracy_b - score_b|``.

:func:`choose_calibration` fits each method of
:data:`workbench.core.calibration.CALIBRATIONS` on all folds but one and
measures the ECE on the held-out fold (cross-fitting: an isotonic map
scored on its own training data would look perfect), keeps the method with
the lowest cross-fitted ECE (``none`` unless another one lowers it) and
refits it on every message. The fitted map is applied by the router
(:class:`workbench.core.calibration.Calibration`, numpy only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import config as _config
from ..core.calibration import CALIBRATIONS, Calibration
from ..errors import ConfigError, require

__all__ = ["reliability_table", "expected_calibration_error", "fit_calibration", "CalibrationChoice",
           "choose_calibration"]


def _bins(scores, n_bins):
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ConfigError(f"n_bins must be an integer >= 1; got {n_bins!r}")
    s = np.clip(np.asarray(scores, np.float64), 0.0, 1.0)
    return s, np.minimum((s * n_bins).astype(np.int64), n_bins - 1)


def reliability_table(scores, correct, *, n_bins=_config.CALIBRATION_BINS):
    """Per equal-width bin of ``scores``: ``bin_low, bin_high, n, share, mean_score, accuracy, gap``.

    Empty bins are kept (``n`` 0, NaN means) so tables of several methods line up.
    """
    import pandas as pd

    s, b = _bins(scores, n_bins)
    ok = np.asarray(correct, np.float64)
    if len(s) != len(ok):
        raise ConfigError(f"scores ({len(s)}) and correct ({len(ok)}) differ in length")
    n = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_s = np.bincount(b, weights=s, minlength=n_bins) / n
        acc = np.bincount(b, weights=ok, minlength=n_bins) / n
    return pd.DataFrame({"bin_low": np.arange(n_bins) / n_bins, "bin_high": np.arange(1, n_bins + 1) / n_bins,
                         "n": n, "share": n / max(len(s), 1), "mean_score": mean_s, "accuracy": acc,
                         "gap": acc - mean_s})


def expected_calibration_error(scores, correct, *, n_bins=_config.CALIBRATION_BINS):
    """``sum_b n_b / n * |accuracy_b - mean score_b|`` over equal-width bins (0 for a perfectly calibrated score)."""
    s, b = _bins(scores, n_bins)
    ok = np.asarray(correct, np.float64)
    if len(s) == 0:
        raise ConfigError("expected_calibration_error needs at least one score")
    n = np.bincount(b, minlength=n_bins)
    gap = np.abs(np.bincount(b, weights=ok, minlength=n_bins) - np.bincount(b, weights=s, minlength=n_bins))
    return float(gap.sum() / len(s))  # sum_b |n_b acc_b - n_b score_b| / n == sum_b n_b / n |acc_b - score_b|


def fit_calibration(scores, correct, method):
    """Fit ``method`` (``none``, ``temperature``: least log-loss ``T``; ``isotonic``) to map scores to accuracy."""
    s = np.asarray(scores, np.float64)
    ok = np.asarray(correct, np.float64)
    if method not in CALIBRATIONS:
        raise ConfigError(f"calibration must be one of {CALIBRATIONS}; got {method!r}")
    if method == "none":
        return Calibration("none")
    if method == "temperature":
        optimize = require("scipy.optimize", purpose="temperature calibration")

        def loss(log_t):
            p = np.clip(Calibration("temperature", temperature=float(np.exp(log_t))).transform(s), 1e-9, 1 - 1e-9)
            return -np.mean(ok * np.log(p) + (1 - ok) * np.log1p(-p))

        res = optimize.minimize_scalar(loss, bounds=(np.log(0.05), np.log(50.0)), method="bounded")
        return Calibration("temperature", temperature=float(np.exp(res.x)))
    require("sklearn", purpose="isotonic calibration")
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, ok)
    x, keep = np.unique(np.asarray(iso.X_thresholds_, np.float64), return_index=True)
    y = np.maximum.accumulate(np.clip(np.asarray(iso.y_thresholds_, np.float64)[keep], 0.0, 1.0))
    return Calibration("isotonic", x=x, y=y)


@dataclass
class CalibrationChoice:
    """The calibration kept, the cross-fitted ECE of every method, and the reliability tables before and after."""

    calibration: Calibration
    table: object          # pandas.DataFrame: method, ece (cross-fitted), chosen
    before: object         # reliability table of the raw scores
    after: object          # reliability table of the cross-fitted calibrated scores of the chosen method

    @property
    def ece_before(self) -> float:
        return float(self.table.set_index("method").loc["none", "ece"])

    @property
    def ece_after(self) -> float:
        return float(self.table.set_index("method").loc[self.calibration.method, "ece"])

    def reliability(self) -> dict:
        """``{label: reliability table}`` of the raw and the calibrated scores, for :func:`workbench.plots.plot_reliability`."""
        out = {f"raw (ECE {100 * self.ece_before:.1f}%)": self.before}
        if self.calibration.method != "none":
            out[f"{self.calibration.method}, cross-fitted (ECE {100 * self.ece_after:.1f}%)"] = self.after
        return out


def choose_calibration(scores, correct, *, methods=_config.CALIBRATION_METHODS, n_splits=_config.N_SPLITS,
                       seed=_config.SEED, n_bins=_config.CALIBRATION_BINS):
    """Cross-fit every method, keep the one with the lowest held-out ECE (ties: ``none``), refit it on all scores.

    Returns
    -------
    CalibrationChoice
    """
    import pandas as pd

    s = np.asarray(scores, np.float64)
    ok = np.asarray(correct, bool)
    methods = tuple(dict.fromkeys(("none",) + tuple(methods)))
    unknown = [m for m in methods if m not in CALIBRATIONS]
    if unknown:
        raise ConfigError(f"calibration methods must be among {CALIBRATIONS}; got {unknown}")
    folds = np.random.default_rng(seed).permutation(len(s)) % max(2, min(n_splits, len(s)))
    crossfit = {}
    for m in methods:
        out = s.copy()
        for f in np.unique(folds):
            held = folds == f
            out[held] = fit_calibration(s[~held], ok[~held], m).transform(s[held])
        crossfit[m] = out
    ece = {m: expected_calibration_error(crossfit[m], ok, n_bins=n_bins) for m in methods}
    best = min(methods, key=lambda m: (round(ece[m], 9), m != "none"))
    table = pd.DataFrame({"method": list(methods), "ece": [ece[m] for m in methods],
                          "chosen": [m == best for m in methods]})
    return CalibrationChoice(fit_calibration(s, ok, best), table, reliability_table(s, ok, n_bins=n_bins),
                             reliability_table(crossfit[best], ok, n_bins=n_bins))
