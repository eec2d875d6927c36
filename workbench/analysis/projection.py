"""2-D maps of embedding vectors: UMAP with a fixed seed and an optional on-disk cache.

A map depends only on the vectors and the UMAP parameters, so the cache key
is a hash of both: a re-run on the same pool skips the fit (and the ~20 s
numba compilation of a first UMAP call in a process).
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from .. import config as _config
from ..errors import ConfigError, require
from ..io import write_bytes_atomic

log = logging.getLogger(__name__)

__all__ = ["project_2d", "projection_key"]


def projection_key(x, **params) -> str:
    """SHA-256 of the vectors' bytes, shape and the UMAP parameters."""
    x = np.ascontiguousarray(np.asarray(x, np.float32))
    h = hashlib.sha256(x.tobytes())
    h.update(json.dumps({"shape": x.shape, **params}, sort_keys=True).encode())
    return h.hexdigest()


def project_2d(x, *, n_neighbors=_config.UMAP_NEIGHBORS, min_dist=_config.UMAP_MIN_DIST, metric="cosine",
               random_state=_config.SEED, cache_dir=None):
    """Project rows of ``x`` to 2-D with UMAP.

    Parameters
    ----------
    x : (n, d) array
    n_neighbors : int
        UMAP neighbourhood size; capped at ``n - 1`` for small inputs.
    min_dist : float
    metric : str
    random_state : int
        Seed of the layout: the same inputs give the same map.
    cache_dir : path, optional
        Folder of cached maps (``umap-<key>.npy``); none when omitted.

    Returns
    -------
    numpy.ndarray of shape (n, 2), float32.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ConfigError(f"x must be a 2-D array; got shape {x.shape}")
    n = len(x)
    if n_neighbors < 2:
        raise ConfigError(f"n_neighbors must be >= 2; got {n_neighbors}")
    if n < 4:  # UMAP needs a few points; a tiny set gets a trivial layout
        return np.column_stack([np.arange(n, dtype=np.float32), np.zeros(n, np.float32)])
    params = dict(n_neighbors=int(min(n_neighbors, n - 1)), min_dist=float(min_dist), metric=metric,
                  random_state=int(random_state))
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"umap-{projection_key(x, **params)}.npy"
        if path.exists():
            try:
                return np.load(path, allow_pickle=False)
            except Exception as e:  # a damaged cache file only costs a refit
                log.warning("ignoring unreadable projection cache %s (%s)", path, e)
    umap = require("umap", purpose="the cluster map")
    log.info("fitting UMAP on %d points", n)
    # n_jobs=1: a fixed random_state makes UMAP single-threaded anyway; saying so silences its warning
    reducer = umap.UMAP(n_components=2, n_jobs=1, **params)
    coords = reducer.fit_transform(x).astype(np.float32)
    if path is not None:
        import io

        buf = io.BytesIO()
        np.save(buf, coords, allow_pickle=False)
        write_bytes_atomic(path, buf.getvalue())
    return coords
