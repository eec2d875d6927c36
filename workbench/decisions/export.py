"""Exporting a pool: pool.npz with its k-NN configuration, head, decision policy and calibration.

:func:`export_pool` is the one export path: ``workbench export`` and the
export notebook both call it with the defaults of :mod:`workbench.config`,
so they write the same artifact.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config as _config
from ..analysis.heads import fit_head
from ..core.artifact import write_pool_npz
from ..core.heads import HEADS
from ..core.coverage import CoverageCap
from ..core.knn import center
from ..core.search import self_top_k
from ..core.question import QuestionBlend
from ..core.policy import POLICIES, DecisionPolicy, abstain_scores
from ..errors import ConfigError
from .out_of_sample import fit_default_point, out_of_sample
from .targets import HeadParams, Targets

log = logging.getLogger(__name__)

__all__ = ["ExportResult", "decision_policy", "head_arrays", "pool_coverage", "export_pool"]


@dataclass
class ExportResult:
    """What :func:`export_pool` wrote."""

    path: Path
    metadata: dict
    point: object = None        # the fitted OperatingPoint, when a target was given
    head_choice: object = None  # HeadChoice, when the head was chosen by the folds
    calibration: object = None  # CalibrationChoice: reliability before and after, the method kept

    def metrics(self) -> dict:
        """Headline numbers of the artifact for a report's ``metrics.json``."""
        m = self.metadata
        out = {"n": m["n"], "size_kib": self.size_bytes / 1024, "backend": m["backend"], "k": m["k"], "vote": m["vote"],
               "center": m["center"], "dtype": m["dtype"], "sha256": m["sha256"], "head": m.get("head", "knn"),
               "policy": (m.get("policy") or {}).get("name", "vote"), "calibration": m.get("calibration", "none")}
        if self.head_choice is not None:
            out["head_oof_tier_accuracy"] = float(self.head_choice.table.set_index("head").loc[out["head"], "tier_accuracy"])
        if self.calibration is not None:
            out.update(ece=self.calibration.ece_after, ece_raw=self.calibration.ece_before)
        if self.point is not None:
            out.update(point_tier_accuracy=self.point.tier_accuracy, point_abstain_rate=self.point.abstain_rate)
        return out

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def summary(self) -> str:
        """One line for the CLI and the notebook."""
        m = self.metadata
        pol = m.get("policy")
        line = (f"wrote {self.path}: {m['n']} messages, {m['backend']}, head {m.get('head', 'knn')}, k={m['k']} "
                f"vote={m['vote']} center={m['center']}")
        if pol:
            line += f", policy {pol['name']}"
            if pol["threshold"] is not None:
                line += f", abstain when {pol['criterion']} < {pol['threshold']:.4f}"
        if m.get("calibration_ece"):
            e = m["calibration_ece"]
            line += (f", calibration {m['calibration']} (ECE {100 * e['before']:.1f}% -> {100 * e['after']:.1f}%)"
                     if m["calibration"] != "none" else f", uncalibrated (ECE {100 * e['before']:.1f}%)")
        if m.get("ann"):
            line += f", HNSW index (M={m['ann']['m']}, efSearch={m['ann']['ef_search']})"
        return line + f", {self.size_bytes / 1024:.0f} KiB"

    def point_summary(self) -> str:
        p = self.point
        if p is None:
            return ""
        return (f"operating point (out of sample): tier accuracy {100 * p.tier_accuracy:.1f}%, downgrades "
                f"{100 * p.downgrade_rate:.1f}%, upgrades {100 * p.upgrade_rate:.1f}%, abstain "
                f"{100 * p.abstain_rate:.1f}%, downgrade weight {p.downgrade_weight:g}"
                + ("" if p.met else " (targets NOT met)"))


def decision_policy(oos, labels, taxonomy, targets, *, calibrate=None):
    """The decision policy a pool stores, and its operating point when ``targets`` has a target to fit.

    With a target (``max_downgrade`` / ``max_abstain``) the threshold (and
    policy, downgrade weight) is fitted on the head's out-of-sample predictions
    ``oos``; otherwise ``targets.threshold`` is used as given (``None``: never abstain).

    Parameters
    ----------
    oos : OutOfSample
    labels : (n,) category indices
    taxonomy : Taxonomy
    targets : Targets
    calibrate : Calibration, optional
        Fit the threshold on the calibrated tier confidence.

    Returns
    -------
    policy : DecisionPolicy
    point : OperatingPoint or None (when fitted)
    """
    cost = taxonomy.cost_matrix()
    if not targets.fits:
        name = targets.policy
        return DecisionPolicy(name, cost.tolist() if POLICIES[name].needs_cost else None, targets.criterion,
                              targets.threshold), None
    point = fit_default_point(oos, labels, taxonomy, targets, cost=cost, calibrate=calibrate)
    if not point.met:
        log.warning("no operating point meets the targets; using the one with the fewest downgrades")
    return point.policy, point


def head_arrays(pool, config, head, params):
    """The arrays of ``head`` trained on the whole pool (on the vectors the router compares)."""
    x = center(pool.vectors) if config.center else np.asarray(pool.vectors, np.float32)
    return fit_head(head, x, pool.labels, len(pool.taxonomy.categories), **params.fit_kwargs()).arrays()


def _calibrate(oos, labels, taxonomy, policy, method, *, seed):
    """The calibration of ``policy``'s tier confidence on out-of-sample predictions (``auto``: lowest cross-fitted ECE)."""
    from ..analysis.calibration import choose_calibration

    rank = taxonomy.category_tier_rank
    base = DecisionPolicy(policy.name, policy.cost, "tier_confidence")
    routed, _, tier_probs = base.apply(oos.shares, rank, len(taxonomy.tiers), pred=oos.pred,
                                       confidence=oos.confidence, margin=oos.margin)
    scores = abstain_scores("tier_confidence", tier_probs, routed, oos.confidence, oos.margin)
    correct = routed == rank[np.asarray(labels)]
    methods = _config.CALIBRATION_METHODS if method == "auto" else ("none", method)
    return choose_calibration(scores, correct, methods=methods, seed=seed)


def pool_coverage(pool, config, *, level=None):
    """The :class:`~workbench.core.coverage.CoverageCap` of ``pool`` and each pool message's cap factor.

    Each message's nearest *other* pool message, in the space the router compares (centred when the config
    says so), gives the pool's own distribution of nearest similarities; the factors are what the cap does to
    the pool's own messages (a share ``level`` of them is scaled down).
    """
    x = center(pool.vectors) if config.center else np.asarray(pool.vectors, np.float32)
    _, sim = self_top_k(x, 1)
    cap = CoverageCap.fit(sim[:, 0], level=_config.COVERAGE_LEVEL if level is None else level)
    return cap, cap.factor(sim[:, 0])


def _head(pool, config, head, targets, params):
    """``(head name, HeadChoice or None, the head's out-of-sample predictions)``."""
    from .head_choice import choose_head

    if head == "auto":
        choice = choose_head(pool.vectors, pool.labels, pool.taxonomy, config, targets=targets, params=params)
        log.info("%s", choice.summary())
        if choice.best != "knn":
            return choice.best, choice, choice.oos[choice.best]
        head = "knn"  # its leave-one-out predictions, not the folds'
    elif head not in HEADS:
        raise ConfigError(f"head must be 'auto' or one of {tuple(HEADS)}; got {head!r}")
    else:
        choice = None
    return head, choice, out_of_sample(pool.vectors, pool.labels, pool.taxonomy, config, head=head, params=params)


def _follow_up_arrays(detector, pool, arrays):
    """Add the follow-up detector's arrays to ``arrays``; its metadata entry."""
    if detector.dim != pool.vectors.shape[1]:
        raise ConfigError(f"the follow-up detector has {detector.dim} dimensions, the pool "
                          f"{pool.vectors.shape[1]}: fit it with the pool's backend")
    arrays.update(detector.arrays())
    return detector.to_metadata()


def _decision_metadata(policy, point, head, calibration, choice, coverage):
    """The metadata an export adds to pool.npz: policy, head, operating point, calibration, head choice."""
    meta = {"policy": policy.to_metadata(), "head": head}
    if point is not None:
        meta["operating_point"] = {k: v for k, v in point.to_dict().items() if k != "policy"}
    meta["calibration"] = calibration.calibration.method
    meta["calibration_ece"] = {"before": calibration.ece_before, "after": calibration.ece_after}
    meta["coverage"] = coverage.to_metadata()
    meta["question"] = QuestionBlend(_config.QUESTION_WEIGHT, _config.QUESTION_MIN_CHARS).to_metadata()
    if choice is not None:
        meta["head_choice"] = {"chosen_by": "out-of-fold tier accuracy at the default operating point",
                               "folds": choice.folds, "table": choice.table.to_dict(orient="records")}
    return meta


def export_pool(pool, path, config, *, head=_config.HEAD, targets=None, params=None, dtype=_config.EXPORT_DTYPE,
                ann=None) -> ExportResult:
    """Write ``pool.npz`` for an embedded pool: the one export path of the CLI and the notebooks.

    The defaults are the project's (:mod:`workbench.config`), and they are
    what ships: ``workbench export`` and the nightly's ``06_export`` call this
    with them and write the same artifact. By default

    1. the head is chosen by evidence (``head="auto"``: every candidate on the
       same folds, see :func:`~workbench.decisions.head_choice.choose_head`);
    2. the decision policy and its abstain threshold are fitted on the head's
       out-of-sample predictions for the targets (abstain on at most
       ``max_abstain`` of traffic; ``policy="any"`` keeps plain voting unless
       another registered policy beats it by more than one paired standard error);
    3. the tier confidence is calibrated when that lowers the expected
       calibration error (``calibration="auto"``), and the threshold is fitted
       on the calibrated probability, so it means the same in every pool.

    Parameters
    ----------
    pool : EmbeddedPool
    path : path
    config : KNNConfig
    head : {"auto", "knn", "logreg", "blend", "mlp"}
    targets : Targets, optional
        Decision policy, criterion, threshold or targets, downgrade weights, traffic mix, calibration
        (default: the project's).
    params : HeadParams, optional
        Folds, seed and head parameters (default: the project's).
    dtype : {"int8", "float16", "float32"}
    ann : bool, optional
        Store an HNSW index (faiss) for approximate search; default: when the pool has at least
        :data:`workbench.config.ANN_THRESHOLD` rows.

    Returns
    -------
    ExportResult
    """
    targets = Targets() if targets is None else targets
    params = HeadParams() if params is None else params
    head, choice, oos = _head(pool, config, head, targets, params)
    labels, taxonomy = pool.labels, pool.taxonomy
    policy, point = decision_policy(oos, labels, taxonomy, targets)
    cal = _calibrate(oos, labels, taxonomy, policy, targets.calibration, seed=params.seed)
    arrays = head_arrays(pool, config, head, params)
    if cal.calibration.method != "none":
        if targets.fits and targets.criterion == "tier_confidence":  # refit the threshold on calibrated probabilities
            refit = targets.with_(policy=policy.name, downgrade_weights=(point.downgrade_weight,))
            policy, point = decision_policy(oos, labels, taxonomy, refit, calibrate=cal.calibration)
        arrays.update(cal.calibration.arrays())
    cover, _ = pool_coverage(pool, config)  # lowers the confidence only: the operating point is unchanged
    arrays.update(cover.arrays())
    extra = _decision_metadata(policy, point, head, cal, choice, cover)
    if params.follow_up is not None:
        extra["follow_up"] = _follow_up_arrays(params.follow_up, pool, arrays)
    meta = write_pool_npz(path, pool.vectors, labels, pool.ids, taxonomy=taxonomy, embedder_spec=pool.embedder.spec,
                          config=config, dtype=dtype, extra_arrays=arrays, extra_metadata=extra,
                          ann=_config.ANN_THRESHOLD <= len(pool.vectors) if ann is None else ann)
    return ExportResult(Path(path), meta, point, choice, cal)
