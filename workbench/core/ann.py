"""Approximate nearest neighbours for big pools: an HNSW graph on inner product, stored inside pool.npz.

Below :data:`workbench.config.ANN_THRESHOLD` rows the router searches
exactly (:func:`workbench.core.knn.top_k`); batch searches (leave-one-out,
coverage) use an index only when :func:`workbench.core.search.choose_search`
estimates it cheaper. Past that many rows, ``export`` builds a faiss
``IndexHNSWFlat`` over the pool's stored vectors (unit rows, so inner
product is cosine) and stores faiss's own serialisation as a ``uint8``
array, ``ann_index``, whose SHA-256 is in the metadata: ``Router.load``
restores it without rebuilding and without pickle. faiss is imported only
when an index is built or restored; a router whose pool carries an index
but that has no faiss installed searches exactly, and says so.
"""
from __future__ import annotations

import hashlib
import logging

import numpy as np

from .. import config as _config
from ..errors import ArtifactError, MissingDependencyError, require

log = logging.getLogger(__name__)

__all__ = ["ANN_MEMBER", "HNSWIndex", "ann_metadata", "check_ann", "restore_index", "search_excluding_self"]

#: The pool.npz member that holds a serialised index.
ANN_MEMBER = "ann_index"
#: Query counts up to which a search runs on one thread (a router's few queries; no idle threads spinning).
_FEW = 8


def _faiss():
    return require("faiss", purpose="the ANN index of a big pool")


def _sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


class HNSWIndex:
    """An HNSW graph over unit rows; ``search`` answers like :func:`~workbench.core.knn.top_k`.

    Use :meth:`build` or :meth:`from_array`; the constructor takes a faiss index.
    """

    def __init__(self, index, *, ef_search=_config.ANN_EF_SEARCH, m=None):
        self.index = index
        self.ef_search = ef_search
        self.m = m

    @classmethod
    def build(cls, x, *, m=_config.ANN_M, ef_construction=_config.ANN_EF_CONSTRUCTION,
              ef_search=_config.ANN_EF_SEARCH):
        """Index the rows of ``x`` (float32, L2-normalised) on inner product."""
        faiss = _faiss()
        x = np.ascontiguousarray(x, np.float32)
        index = faiss.IndexHNSWFlat(x.shape[1], int(m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(ef_construction)
        index.add(x)
        return cls(index, ef_search=ef_search, m=m)

    def to_array(self) -> np.ndarray:
        """faiss's own serialisation, as a 1-D ``uint8`` array (no pickle)."""
        return np.asarray(_faiss().serialize_index(self.index), np.uint8)

    @classmethod
    def from_array(cls, a, *, ef_search=_config.ANN_EF_SEARCH, m=None):
        return cls(_faiss().deserialize_index(np.ascontiguousarray(a, np.uint8)), ef_search=ef_search, m=m)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries, k):
        """Indices and similarities of (about) the ``k`` most similar rows, most similar first.

        Returns
        -------
        idx, sim : (n, k) arrays; a missing neighbour (tiny pools) has index -1 and similarity -inf.
        """
        faiss = _faiss()
        q = np.ascontiguousarray(queries, np.float32)
        k = min(int(k), self.ntotal)
        self.index.hnsw.efSearch = max(int(self.ef_search), k)
        threads = faiss.omp_get_max_threads()
        if len(q) <= _FEW:
            faiss.omp_set_num_threads(1)
        try:
            sim, idx = self.index.search(q, k)
        finally:
            faiss.omp_set_num_threads(threads)
        sim = np.where(idx < 0, -np.inf, sim).astype(np.float32)
        return idx.astype(np.int64), sim


def search_excluding_self(index, x, k, *, groups=None):
    """Leave-one-out neighbours through an index: each row's ``k`` nearest among the *other* rows.

    ``groups`` (a label per row) leaves out a row's whole group, as
    :func:`workbench.analysis.evaluate.loo_neighbors` does. Rows left with
    fewer than ``k`` neighbours get -1 / -inf in the missing places.
    """
    extra = 1 if groups is None else int(np.bincount(np.unique(groups, return_inverse=True)[1]).max())
    idx, sim = index.search(x, k + extra)
    rows = np.arange(len(x))[:, None]
    drop = (idx == rows) if groups is None else (np.asarray(groups)[np.maximum(idx, 0)] == np.asarray(groups)[rows])
    drop |= idx < 0
    keep = np.argsort(drop, axis=1, kind="stable")[:, :k]  # the kept ones first, in similarity order
    out_idx = np.take_along_axis(idx, keep, axis=1)
    out_sim = np.take_along_axis(sim, keep, axis=1)
    missing = np.take_along_axis(drop, keep, axis=1)
    out_idx[missing], out_sim[missing] = -1, -np.inf
    return out_idx, out_sim


def ann_metadata(array, index, *, n) -> dict:
    """What pool.npz records about its index (the hash is checked on load, before faiss is needed)."""
    return {"kind": "hnsw", "library": "faiss", "metric": "inner_product", "rows": int(n),
            "m": index.m, "ef_search": int(index.ef_search),
            "sha256": _sha256(array), "bytes": int(array.size)}


def check_ann(path, arrays, meta):
    """Refuse an ``ann_index`` that is not the one the metadata describes (numpy only: no faiss needed)."""
    ann, member = meta.get("ann"), arrays.get(ANN_MEMBER)
    if ann is None and member is None:
        return
    if ann is None or member is None:
        what = "ann metadata without an index" if member is None else "an index without ann metadata"
        raise ArtifactError(f"{path}: {what}")
    def count(key, low, high):
        v = ann.get(key)
        return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high

    if not isinstance(ann, dict) or not isinstance(ann.get("sha256"), str) or not count("rows", 0, 10**9) \
            or not count("ef_search", 1, 1 << 16) or not (ann.get("m") is None or count("m", 2, 1024)):
        raise ArtifactError(f"{path}: ann metadata must be an object with sha256, rows, ef_search and m")
    if member.dtype != np.uint8 or member.ndim != 1:
        raise ArtifactError(f"{path}: {ANN_MEMBER} must be a 1-D uint8 array; got {member.dtype} {member.shape}")
    if _sha256(member) != ann.get("sha256") or ann.get("rows") != len(arrays["embeddings"]):
        raise ArtifactError(f"{path}: ANN index hash or row count mismatch (file corrupted or edited)")


def restore_index(artifact):
    """The pool's index, ready to search, or ``None`` (no index, or faiss missing: exact search)."""
    ann = artifact.metadata.get("ann")
    if ann is None:
        return None
    try:
        index = HNSWIndex.from_array(artifact.arrays[ANN_MEMBER], ef_search=ann["ef_search"], m=ann.get("m"))
    except MissingDependencyError as e:
        log.warning("the pool carries an ANN index but %s; searching exactly (slower on a big pool)", e)
        return None
    except Exception as e:  # faiss refuses bytes that are not an index it wrote (a forged or damaged member)
        raise ArtifactError(f"ann_index is not a readable index ({type(e).__name__})") from None
    if not hasattr(index.index, "hnsw"):
        raise ArtifactError(f"ann_index is a {type(index.index).__name__}, not an HNSW index")
    if getattr(index.index, "d", artifact.embeddings.shape[1]) != artifact.embeddings.shape[1]:
        raise ArtifactError(f"ANN index has dimension {index.index.d}, the pool {artifact.embeddings.shape[1]}")
    if index.ntotal != len(artifact.embeddings):
        raise ArtifactError(f"ANN index holds {index.ntotal} rows, the pool {len(artifact.embeddings)}")
    return index
