"""pool.npz: the artifact the production router loads.

Arrays only, readable with ``np.load(path, allow_pickle=False)``:

- ``embeddings`` (n, d) float16/float32, L2-normalised (centred first when the config says so)
- ``labels`` (n,) int16 category index
- ``ids`` (n,) unicode
- ``center`` (d,) float32 (zeros when centering is off)
- ``metadata`` 0-d unicode: JSON with schema version, backend, taxonomy,
  k-NN config, creation time, SHA-256 of the embedding bytes and counts.
- optional policy arrays (``head_*``) added by decision policies.
- optional ``ann_index`` (1-D uint8): a serialised HNSW index of big pools,
  described (SHA-256 included) by the metadata's ``ann`` (see :mod:`.ann`).

This module needs numpy only: the router imports it.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from .. import config as _config
from ..errors import ArtifactError
from ..io import atomic_file
from .ann import check_ann
from .knn import KNNConfig, center

__all__ = ["SCHEMA_VERSION", "OPTIONAL_MEMBERS", "write_pool_npz", "load_pool_npz", "PoolArtifact"]

SCHEMA_VERSION = 1
#: Named members a pool.npz may carry besides the required ones and the head's ``head_*`` arrays.
OPTIONAL_MEMBERS = ("ann_index",)
_REQUIRED_META = ("schema_version", "backend", "model_id", "dim", "prefix", "categories", "tier_map",
                  "tiers", "k", "vote", "temperature", "center", "sha256", "counts", "created")


def _sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _ann_index(stored, build):
    """The ``ann_index`` member and its metadata: built over the vectors exactly as stored (or none)."""
    if not build:
        return {}, {}
    from .ann import HNSWIndex, ann_metadata

    index = HNSWIndex.build(stored.astype(np.float32))
    array = index.to_array()
    return {"ann_index": array}, {"ann": ann_metadata(array, index, n=len(stored))}


def write_pool_npz(path, embeddings, labels, ids, *, taxonomy, embedder_spec, config, dtype=_config.EXPORT_DTYPE,
                   extra_arrays=None, extra_metadata=None, ann=False):
    """Write pool.npz atomically (temp file in the same folder, then rename).

    Parameters
    ----------
    path : path
    embeddings : (n, d) array of L2-normalised rows (not centred)
    labels : (n,) category indices in ``taxonomy.categories`` order
    ids : (n,) message ids
    taxonomy : Taxonomy
    embedder_spec : dict
        ``Embedder.spec`` of the backend that made the vectors.
    config : KNNConfig or dict
        k, vote, temperature, center.
    dtype : {"float16", "float32"}
    extra_arrays, extra_metadata : dict, optional
        Added arrays (no object dtype) and metadata keys (decision policies).
    ann : bool
        Also store an HNSW index of the stored vectors (needs faiss; see :mod:`workbench.core.ann`).

    Returns
    -------
    dict, the metadata written.
    """
    x = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels, np.int16)
    ids = np.asarray([str(i) for i in ids])
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if x.ndim != 2 or len(x) != len(labels) or len(x) != len(ids):
        raise ArtifactError(f"embeddings {x.shape}, labels {labels.shape} and ids {ids.shape} do not match")
    if x.shape[1] != int(embedder_spec["dim"]):
        raise ArtifactError(f"embeddings have dimension {x.shape[1]}, backend says {embedder_spec['dim']}")
    mean = x.mean(axis=0) if cfg["center"] else np.zeros(x.shape[1], np.float32)
    stored = (center(x, mean) if cfg["center"] else x).astype(dtype)
    cats = list(taxonomy.categories)
    meta = dict(
        schema_version=SCHEMA_VERSION, **embedder_spec, categories=cats, tier_map=dict(taxonomy.tier_map),
        tiers=list(taxonomy.tiers), cost=taxonomy.cost_matrix().tolist(),
        k=int(cfg["k"]), vote=cfg["vote"], temperature=float(cfg["temperature"]), center=bool(cfg["center"]),
        dtype=str(stored.dtype), n=int(len(stored)), sha256=_sha256(stored),
        counts={c: int((labels == i).sum()) for i, c in enumerate(cats)},
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    meta.update(extra_metadata or {})
    ann_arrays, ann_meta = _ann_index(stored, ann)
    meta.update(ann_meta)
    arrays = dict(embeddings=stored, labels=labels, ids=ids, center=mean.astype(np.float32),
                  metadata=np.array(json.dumps(meta, ensure_ascii=False)), **ann_arrays)
    for name, a in (extra_arrays or {}).items():
        a = np.asarray(a)
        if a.dtype == object:
            raise ArtifactError(f"array {name!r} has object dtype; pool.npz holds plain arrays only")
        arrays[name] = a
    with atomic_file(path) as fh:
        np.savez(fh, **arrays)
    return meta


class PoolArtifact:
    """A validated pool.npz in memory: ``embeddings`` (float32), ``labels``, ``ids``, ``center``, ``metadata``."""

    def __init__(self, embeddings, labels, ids, center, metadata, arrays):
        self.embeddings, self.labels, self.ids, self.center = embeddings, labels, ids, center
        self.metadata, self.arrays = metadata, arrays

    @property
    def config(self) -> KNNConfig:
        """The k-NN configuration the pool was exported with."""
        return KNNConfig.from_dict(self.metadata)

    def __repr__(self):
        m = self.metadata
        return f"PoolArtifact(n={len(self.labels)}, backend={m['backend']!r}, k={m['k']}, vote={m['vote']!r})"


def load_pool_npz(path) -> PoolArtifact:
    """Load and check a pool.npz: schema, shapes, hash, and no NaN or constant vectors.

    Raises
    ------
    ArtifactError
        With a message naming the file and what is wrong.
    """
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except Exception as e:
        raise ArtifactError(f"{path}: not a readable .npz ({e})") from None
    with z:
        try:
            arrays = {name: z[name] for name in z.files}
        except Exception as e:
            raise ArtifactError(f"{path}: damaged or holds pickled objects ({e})") from None
    missing = [a for a in ("embeddings", "labels", "ids", "center", "metadata") if a not in arrays]
    if missing:
        raise ArtifactError(f"{path}: missing array(s) {missing}")
    try:
        meta = json.loads(str(arrays["metadata"]))
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path}: metadata is not JSON ({e})") from None
    lacking = [k for k in _REQUIRED_META if k not in meta]
    if lacking:
        raise ArtifactError(f"{path}: metadata lacks {lacking}")
    if meta["schema_version"] != SCHEMA_VERSION:
        raise ArtifactError(f"{path}: schema version {meta['schema_version']} (this workbench reads {SCHEMA_VERSION})")
    emb, labels, ids, mean = arrays["embeddings"], arrays["labels"], arrays["ids"], arrays["center"]
    n, d = (emb.shape + (0,))[:2] if emb.ndim == 2 else (-1, -1)
    if emb.ndim != 2 or d != meta["dim"] or labels.shape != (n,) or ids.shape != (n,) or mean.shape != (d,):
        raise ArtifactError(f"{path}: inconsistent shapes: embeddings {emb.shape}, labels {labels.shape}, "
                            f"ids {ids.shape}, center {mean.shape}, dim {meta['dim']}")
    if _sha256(emb) != meta["sha256"]:
        raise ArtifactError(f"{path}: embedding hash mismatch (file corrupted or edited)")
    check_ann(path, arrays, meta)
    if n == 0:
        raise ArtifactError(f"{path}: the pool is empty")
    if labels.min() < 0 or labels.max() >= len(meta["categories"]):
        raise ArtifactError(f"{path}: label index out of range for {len(meta['categories'])} categories")
    x = emb.astype(np.float32)
    if not np.isfinite(x).all():
        raise ArtifactError(f"{path}: embeddings contain NaN or infinite values")
    if (np.ptp(x, axis=1) == 0).any():
        raise ArtifactError(f"{path}: {int((np.ptp(x, axis=1) == 0).sum())} constant (degenerate) embedding row(s)")
    return PoolArtifact(x, labels.astype(np.int64), ids, mean.astype(np.float32), meta, arrays)
