"""Embedding backends compared on the same pool: leave-one-out accuracy, each with its best configuration."""
from __future__ import annotations

import logging
import time

from .. import config as _config

log = logging.getLogger(__name__)

__all__ = ["compare_backends", "fit_part_map"]


def compare_backends(pool_paths, backends, *, taxonomy=None, cache_dir=None, dup_threshold=_config.DUP_THRESHOLD, k=None,
                     progress=False):
    """Leave-one-out and leave-duplicate-group-out accuracy of the same pool under each backend.

    Each backend gets its best swept configuration (or ``k`` when given).

    Returns
    -------
    pandas.DataFrame indexed by backend.
    """
    import pandas as pd

    from ..dataset.embeddings import load_embedded_pool
    from .evaluate import choose_config, evaluate_pool

    rows = []
    for name in backends:
        start = time.perf_counter()
        pool = load_embedded_pool(pool_paths, taxonomy=taxonomy, backend=name, cache_dir=cache_dir, progress=progress)
        config, _ = choose_config(pool, k=k)
        res = evaluate_pool(pool.frame, pool.vectors, pool.taxonomy, config, dup_threshold=dup_threshold)
        rows.append({"backend": name, "dim": pool.embedder.dim, "k": config.k, "vote": config.vote,
                     "center": config.center, "tier_accuracy": res.loo.tier_accuracy,
                     "category_accuracy": res.loo.category_accuracy,
                     "downgrade_rate": res.loo.downgrade_rate, "upgrade_rate": res.loo.upgrade_rate,
                     "ldgo_tier_accuracy": res.ldgo.tier_accuracy, "seconds": time.perf_counter() - start})
        log.info("backend %s: tier accuracy %.3f", name, res.loo.tier_accuracy)
    return pd.DataFrame(rows).set_index("backend")


def fit_part_map(source_vectors, target_vectors, *, ridge=_config.PART_MAP_RIDGE):
    """Ridge map ``W`` with ``source @ W`` close to ``target``: one backend's space into another's.

    Fitted on texts both backends cover; a composite backend applies it to
    texts its target part does not cover (``core.embed.PART_MAPS``).

    Parameters
    ----------
    source_vectors : (n, d_source) array
    target_vectors : (n, d_target) array
    ridge : float
        L2 penalty (> 0), in units of the rows' squared norm (unit vectors: 1).

    Returns
    -------
    (d_source, d_target) float32 array.
    """
    import numpy as np

    from ..errors import ConfigError

    x = np.asarray(source_vectors, np.float64)
    y = np.asarray(target_vectors, np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ConfigError(f"source and target vectors must be 2-D with the same rows; got {x.shape} and {y.shape}")
    if not ridge > 0:
        raise ConfigError(f"ridge must be > 0; got {ridge!r}")
    w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
    return w.astype(np.float32)
