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
from ..core.knn import center
from ..core.policy import DecisionPolicy
from ..errors import ConfigError
from .out_of_sample import fit_default_point, out_of_sample

log = logging.getLogger(__name__)

__all__ = ["ExportResult", "policy_exports", "export_pool"]


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


def policy_exports(x, labels, taxonomy, config, *, policy="vote", criterion=_config.ABSTAIN_CRITERION,
                   threshold=None, max_downgrade=None, max_abstain=None, downgrade_weights=_config.DOWNGRADE_WEIGHTS,
                   head="knn", cost=None, traffic_mix=None, C=_config.LOGREG_C, seed=_config.SEED,
                   blend_weight=_config.BLEND_WEIGHT, oos=None, calibrate=None):
    """What :func:`~workbench.core.artifact.write_pool_npz` needs to store a decision policy (and head).

    With a target (``max_downgrade`` / ``max_abstain``) the threshold and
    downgrade weight are fitted on the head's out-of-sample predictions;
    otherwise ``threshold`` is used as given (``None``: never abstain).

    Parameters
    ----------
    x, labels, taxonomy, config
        The pool's vectors, category indices, taxonomy and k-NN config.
    policy : {"vote", "cost", "any"}
        ``any`` (fitting only) lets plain voting compete with the cost-aware policy.
    criterion : {"tier_confidence", "confidence", "margin"}
    threshold, max_downgrade, max_abstain : float, optional
    downgrade_weights : sequence of float
    head : {"knn", "logreg", "blend"}
    cost : (n_tiers, n_tiers) array, optional
        Default: ``taxonomy.cost_matrix()``.
    traffic_mix : dict tier -> share, optional
        Fit the targets on this mix instead of the pool's own.
    C, seed, blend_weight
        Head parameters.
    oos : OutOfSample, optional
        The head's out-of-sample predictions, when already computed.
    calibrate : Calibration, optional
        Fit the threshold on the calibrated tier confidence.

    Returns
    -------
    extra_metadata : dict
    extra_arrays : dict
    point : OperatingPoint or None (when fitted)
    """
    if head not in HEADS:
        raise ConfigError(f"head must be one of {tuple(HEADS)}; got {head!r}")
    if threshold is not None and (max_downgrade is not None or max_abstain is not None):
        raise ConfigError("give either an abstain threshold or a target (max_downgrade / max_abstain), not both")
    cost = taxonomy.cost_matrix() if cost is None else np.asarray(cost, np.float64)
    point = None
    if max_downgrade is not None or max_abstain is not None:
        if oos is None:
            oos = out_of_sample(x, labels, taxonomy, config, head=head, seed=seed, C=C, blend_weight=blend_weight)
        point = fit_default_point(oos, labels, taxonomy, policy=policy, criterion=criterion,
                                  max_downgrade=max_downgrade, max_abstain=max_abstain,
                                  downgrade_weights=downgrade_weights, cost=cost, traffic_mix=traffic_mix,
                                  calibrate=calibrate)
        chosen = point.policy
        if not point.met:
            log.warning("no operating point meets the targets; using the one with the fewest downgrades")
    else:
        if policy == "any":
            raise ConfigError("policy 'any' needs a target to choose by (max_downgrade / max_abstain)")
        chosen = DecisionPolicy(policy, cost.tolist() if policy == "cost" else None, criterion, threshold)
    meta = {"policy": chosen.to_metadata(), "head": head}
    if point is not None:
        meta["operating_point"] = {k: v for k, v in point.to_dict().items() if k != "policy"}
    xr = center(x) if config.center else np.asarray(x, np.float32)
    arrays = fit_head(head, xr, labels, len(taxonomy.categories), C=C, seed=seed, blend_weight=blend_weight).arrays()
    return meta, arrays, point


def _calibrate(oos, labels, taxonomy, policy, method, *, seed):
    """The calibration of ``policy``'s tier confidence on out-of-sample predictions (``auto``: lowest cross-fitted ECE)."""
    from ..analysis.calibration import choose_calibration
    from ..core.policy import abstain_scores

    rank = taxonomy.category_tier_rank
    base = DecisionPolicy(policy.name, policy.cost, "tier_confidence")
    routed, _, probs = base.apply(oos.shares, rank, len(taxonomy.tiers), pred=oos.pred, confidence=oos.confidence,
                                  margin=oos.margin)
    scores = abstain_scores("tier_confidence", probs, routed, oos.confidence, oos.margin)
    correct = routed == rank[np.asarray(labels)]
    methods = _config.CALIBRATION_METHODS if method == "auto" else ("none", method)
    return choose_calibration(scores, correct, methods=methods, seed=seed)


def export_pool(pool, path, config, *, head=_config.HEAD, policy=_config.DECISION_POLICY,
                criterion=_config.ABSTAIN_CRITERION, threshold=None, max_downgrade=_config.MAX_DOWNGRADE,
                max_abstain=_config.MAX_ABSTAIN, downgrade_weights=_config.DOWNGRADE_WEIGHTS,
                calibration=_config.CALIBRATION, traffic_mix=None, dtype=_config.EXPORT_DTYPE, C=_config.LOGREG_C,
                blend_weight=_config.BLEND_WEIGHT, seed=_config.SEED, ann=None) -> ExportResult:
    """Write ``pool.npz`` for an embedded pool: the one export path of the CLI and the notebooks.

    The defaults are the project's (:mod:`workbench.config`), and they are
    what ships: ``workbench export`` and the nightly's ``06_export`` call this
    with them and write the same artifact. By default

    1. the head is chosen by evidence (``head="auto"``: every candidate on the
       same folds, see :func:`~workbench.decisions.head_choice.choose_head`);
    2. the decision policy and its abstain threshold are fitted on the head's
       out-of-sample predictions for the targets (abstain on at most
       ``max_abstain`` of traffic; ``policy="any"`` keeps plain voting unless
       the cost-aware tier beats it by more than one paired standard error);
    3. the tier confidence is calibrated when that lowers the expected
       calibration error (``calibration="auto"``), and the threshold is fitted
       on the calibrated probability, so it means the same in every pool.

    Parameters
    ----------
    pool : EmbeddedPool
    path : path
    config : KNNConfig
    head : {"auto", "knn", "logreg", "blend"}
    policy : {"vote", "cost", "any"}
        Without a target or threshold there is nothing to fit: ``any`` routes by plain voting.
    criterion : {"tier_confidence", "confidence", "margin"}
    threshold : float, optional
        A fixed abstain threshold; it replaces the targets.
    max_downgrade, max_abstain : float or None
        Targets (shares of traffic); both None with no threshold: the pool never abstains.
    downgrade_weights, traffic_mix, C, blend_weight, seed
        See :func:`policy_exports` and :func:`~workbench.decisions.head_choice.choose_head`.
    calibration : {"auto", "none", "temperature", "isotonic"}
    dtype : {"int8", "float16", "float32"}
    ann : bool, optional
        Store an HNSW index (faiss) for approximate search; default: when the pool has at least
        :data:`workbench.config.ANN_THRESHOLD` rows.

    Returns
    -------
    ExportResult
    """
    from .head_choice import choose_head

    if threshold is not None:
        max_downgrade = max_abstain = None
    targets = max_downgrade is not None or max_abstain is not None
    if policy == "any" and not targets:
        policy = "vote"
    if calibration != "auto" and calibration not in _config.CALIBRATION_METHODS:
        raise ConfigError(f"calibration must be 'auto' or one of {_config.CALIBRATION_METHODS}; got {calibration!r}")
    x, labels, taxonomy = pool.vectors, pool.labels, pool.taxonomy
    choice = None
    if head == "auto":
        choice = choose_head(x, labels, taxonomy, config, policy=policy, criterion=criterion,
                             max_downgrade=max_downgrade, max_abstain=max_abstain,
                             downgrade_weights=downgrade_weights, seed=seed, C=C, blend_weight=blend_weight)
        head = choice.best
        log.info("%s", choice.summary())
    elif head not in HEADS:
        raise ConfigError(f"head must be 'auto' or one of {tuple(HEADS)}; got {head!r}")
    kw = dict(policy=policy, criterion=criterion, threshold=threshold, max_downgrade=max_downgrade,
              max_abstain=max_abstain, downgrade_weights=downgrade_weights, head=head, traffic_mix=traffic_mix, C=C,
              seed=seed, blend_weight=blend_weight)
    # out-of-sample predictions of the head: they fit the policy and the calibration, and measure the ECE
    oos = choice.oos[head] if choice is not None and head != "knn" else \
        out_of_sample(x, labels, taxonomy, config, head=head, seed=seed, C=C, blend_weight=blend_weight)
    meta_x, arrays, point = policy_exports(x, labels, taxonomy, config, oos=oos, **kw)
    chosen = DecisionPolicy.from_metadata(meta_x["policy"])
    cal = _calibrate(oos, labels, taxonomy, chosen, calibration, seed=seed)
    if cal.calibration.method != "none":
        if targets and criterion == "tier_confidence":  # refit the threshold on calibrated probabilities
            meta_x, arrays, point = policy_exports(
                x, labels, taxonomy, config, oos=oos, calibrate=cal.calibration,
                **dict(kw, policy=chosen.name, downgrade_weights=(point.downgrade_weight,)))
        arrays.update(cal.calibration.arrays())
    meta_x["calibration"] = cal.calibration.method
    meta_x["calibration_ece"] = {"before": cal.ece_before, "after": cal.ece_after}
    if choice is not None:
        meta_x["head_choice"] = {"chosen_by": "out-of-fold tier accuracy at the default operating point",
                                 "folds": choice.folds, "table": choice.table.to_dict(orient="records")}
    meta = write_pool_npz(path, x, labels, pool.ids, taxonomy=taxonomy, embedder_spec=pool.embedder.spec,
                          config=config, dtype=dtype, extra_arrays=arrays, extra_metadata=meta_x,
                          ann=_config.ANN_THRESHOLD <= len(x) if ann is None else ann)
    return ExportResult(Path(path), meta, point, choice, cal)
