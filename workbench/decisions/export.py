"""Exporting a pool: pool.npz with its k-NN configuration, decision policy and head.

:func:`export_pool` is the one export path: ``workbench export`` and the
export notebook both call it, so they write the same artifact from the same
arguments.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config as _config
from ..analysis.heads import fit_logreg_head
from ..core.artifact import write_pool_npz
from ..core.heads import HEADS, LinearHead
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
    point: object = None  # the fitted OperatingPoint, when a target was given

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
                   head="knn", cost=None, traffic_mix=None, C=_config.LOGREG_C, seed=_config.SEED):
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
    head : {"knn", "logreg"}
    cost : (n_tiers, n_tiers) array, optional
        Default: ``taxonomy.cost_matrix()``.
    traffic_mix : dict tier -> share, optional
        Fit the targets on this mix instead of the pool's own.
    C, seed
        Logistic-regression head parameters.

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
        oos = out_of_sample(x, labels, taxonomy, config, head=head, seed=seed, C=C)
        point = fit_default_point(oos, labels, taxonomy, policy=policy, criterion=criterion,
                                  max_downgrade=max_downgrade, max_abstain=max_abstain,
                                  downgrade_weights=downgrade_weights, cost=cost, traffic_mix=traffic_mix)
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
    arrays = {}
    if head == "logreg":
        xr = center(x) if config.center else np.asarray(x, np.float32)
        arrays = LinearHead(*fit_logreg_head(xr, labels, len(taxonomy.categories), C=C, seed=seed)).arrays()
    return meta, arrays, point


def export_pool(pool, path, config, *, head="knn", policy=None, criterion=_config.ABSTAIN_CRITERION, threshold=None,
                max_downgrade=None, max_abstain=None, downgrade_weights=_config.DOWNGRADE_WEIGHTS, traffic_mix=None,
                dtype=_config.EXPORT_DTYPE, C=_config.LOGREG_C, seed=_config.SEED, ann=None) -> ExportResult:
    """Write ``pool.npz`` for an embedded pool: the one export path of the CLI and the notebooks.

    Without a policy, threshold, target or non-default head the artifact
    routes by plain voting and never abstains. Otherwise the decision
    policy (and head) is stored; with a target (``max_downgrade`` /
    ``max_abstain``) its threshold is fitted on out-of-sample predictions.

    Parameters
    ----------
    pool : EmbeddedPool
    path : path
    config : KNNConfig
    head : {"knn", "logreg"}
    policy : {"vote", "cost", "any"} or None
        ``None``: ``cost`` when a target is given, else ``vote``.
    criterion, threshold, max_downgrade, max_abstain, downgrade_weights, traffic_mix, C, seed
        See :func:`policy_exports`.
    dtype : {"float16", "float32"}
    ann : bool, optional
        Store an HNSW index (faiss) for approximate search; default: when the pool has at least
        :data:`workbench.config.ANN_THRESHOLD` rows.

    Returns
    -------
    ExportResult
    """
    targets = max_downgrade is not None or max_abstain is not None
    meta_x, arrays, point = {}, {}, None
    if policy is not None or threshold is not None or targets or head != "knn":
        meta_x, arrays, point = policy_exports(
            pool.vectors, pool.labels, pool.taxonomy, config, policy=policy or ("cost" if targets else "vote"),
            criterion=criterion, threshold=threshold, max_downgrade=max_downgrade, max_abstain=max_abstain,
            downgrade_weights=downgrade_weights, head=head, traffic_mix=traffic_mix, C=C, seed=seed)
    meta = write_pool_npz(path, pool.vectors, pool.labels, pool.ids, taxonomy=pool.taxonomy,
                          embedder_spec=pool.embedder.spec, config=config, dtype=dtype, extra_arrays=arrays,
                          extra_metadata=meta_x, ann=_config.ANN_THRESHOLD <= len(pool.vectors) if ann is None else ann)
    return ExportResult(Path(path), meta, point)
