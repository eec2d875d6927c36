"""Exact top-k similarity search in blocks (numpy only), and the cost model that picks exact or HNSW search.

Why not ``argpartition`` over every similarity: on this project's 2-core
machine it costs 5-10 ns an element, a large share of the matrix product's
own cost (about 10-25 ns an element at 384-896 dimensions). :func:`block_top_k`
first takes the maximum of each strided run of :data:`GROUP` columns; the
k-th largest of those maxima is a lower bound of the k-th largest
similarity, so only the few runs that reach it are looked at again.
Leave-one-out (:func:`self_top_k`) computes each pair of row blocks once
and reads it from both sides (half the products): a row's list starts from
its own block, and from then on only entries reaching its k-th best so far
are merged in.

Ties: most similar first, then the lower pool index, on every exact path
(blocked or not, either side of a symmetric block), so they agree up to the
rounding of the products themselves (BLAS and einsum round differently).
(The argpartition search it replaces broke ties in no fixed order.)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import config as _config
from ..errors import MissingDependencyError

log = logging.getLogger(__name__)

__all__ = ["GROUP", "BLOCK_ELEMENTS", "Neighbors", "block_top_k", "merge_top_k", "exact_top_k", "self_top_k",
           "nearest_neighbors", "SearchCost", "search_cost", "choose_search"]

#: Columns per run whose maximum is taken first (8: a 4,096-column block keeps 512 maxima to partition).
GROUP = 8
#: Similarities per block (rows x columns): about 64 MB of float32.
BLOCK_ELEMENTS = 16 << 20
#: Query counts up to which the product is a plain loop: a router's few queries, where multithreaded BLAS's
#: spinning threads would otherwise slow the embedding model's own thread pool down by about 2x.
_SMALL_BATCH = 8


def _nonzero(mask):
    """``np.nonzero`` of a 2-D mask, row-major: through ``flatnonzero``, about 10x faster on a big block."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def _run_max(S, runs):
    """Maximum of each strided run ``r, r + runs, r + 2 runs, ...`` (columns past the last whole run join run ``r``)."""
    out = S[:, :runs].copy(order="K")  # "K": a transposed block stays in its memory order (no slow transpose)
    for start in range(runs, S.shape[1], runs):  # whole slices: far faster than reducing runs of GROUP columns
        part = S[:, start:start + runs]
        np.maximum(out[:, :part.shape[1]], part, out=out[:, :part.shape[1]])
    return out


def _desc_key(sim, idx):
    """One uint64 per entry whose ascending order is: most similar first, then the lower index."""
    bits = (np.asarray(sim, np.float32) + np.float32(0)).view(np.uint32).astype(np.uint64)  # + 0: -0.0 -> 0.0
    ascending = np.where(bits >> 31 == 1, ~bits & 0xFFFFFFFF, bits | 0x80000000)
    return ((~ascending & 0xFFFFFFFF) << 32) | (np.asarray(idx).astype(np.uint64) & 0xFFFFFFFF)


def _candidates(S, k):
    """Row-ordered ``(rows, cols)`` of entries that may be among a row's ``k`` largest, and the row thresholds.

    The k-th largest run maximum is a lower bound of the k-th largest
    entry, so only runs reaching it can hold one; small blocks take the
    exact k-th value from a partition.
    """
    b, m = S.shape
    group = GROUP
    runs = m // group
    if runs >= 4 * k and b * m >= 1 << 16:
        run_max = np.ascontiguousarray(_run_max(S, runs))  # a transposed block: transpose 1/GROUP of it only
        t = np.partition(run_max, runs - k, axis=1)[:, runs - k]
        t = np.where(np.isnan(t), -np.inf, t)
        rows, run = _nonzero(run_max >= t[:, None])
        cols = run[:, None] + runs * np.arange(group + 1)
        valid = cols < m
        return np.repeat(rows, group + 1)[valid.ravel()], cols[valid], t
    t = np.partition(S, m - k, axis=1)[:, m - k]
    t = np.where(np.isnan(t), -np.inf, t)
    rows, cols = _nonzero(S >= t[:, None])
    return rows, cols, t


def block_top_k(S, k, *, col_offset=0):
    """Indices (offset by ``col_offset``) and values of each row's ``k`` largest entries of ``S``.

    Most similar first, ties to the lower column. ``-inf`` entries (masked
    pairs) come last; ``k`` is capped at the number of columns.

    Returns
    -------
    idx : int64 (rows, k), sim : float32 (rows, k)
    """
    S = np.asarray(S, np.float32)  # C or Fortran order (a transposed view) alike
    b, m = S.shape
    k = min(int(k), m)
    if b == 0 or k == 0:
        return np.empty((b, k), np.int64), np.empty((b, k), np.float32)
    if k == 1:  # argmax returns the first of equal maxima: the same tie rule, in one pass
        col = S.argmax(axis=1)[:, None]
        return col + col_offset, np.take_along_axis(S, col, axis=1)
    rows, cols, t = _candidates(S, k)
    vals = S[rows, cols]
    keep = vals >= t[rows]
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    counts = np.bincount(rows, minlength=b)
    pos = np.arange(len(rows)) - (np.cumsum(counts) - counts)[rows]
    key = np.full((b, counts.max()), np.iinfo(np.uint64).max, np.uint64)
    key[rows, pos] = _desc_key(vals, cols)
    key = np.sort(key, axis=1)[:, :k]
    col = (key & 0xFFFFFFFF).astype(np.int64)
    return col + col_offset, S[np.arange(b)[:, None], col]


def _from_key(key):
    """Inverse of :func:`_desc_key`: ``(idx, sim)``; the placeholder index 0xFFFFFFFF comes back as -1."""
    low = (key & 0xFFFFFFFF).astype(np.int64)
    ascending = ~(key >> 32) & 0xFFFFFFFF
    bits = np.where(ascending >> 31 == 1, ascending & 0x7FFFFFFF, ~ascending & 0xFFFFFFFF)
    return np.where(low == 0xFFFFFFFF, -1, low), bits.astype(np.uint32).view(np.float32)


def merge_top_k(idx_a, sim_a, idx_b, sim_b, k):
    """The ``k`` best of two per-row neighbour lists (same rows), most similar first, ties to the lower index."""
    idx = np.concatenate([idx_a, idx_b], axis=1)
    sim = np.concatenate([sim_a, sim_b], axis=1)
    order = np.argsort(_desc_key(sim, idx), axis=1)[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(sim, order, axis=1)


def _merge_entries(idx, sim, rows, cols, vals):
    """Merge loose entries ``(row, col, value)`` into per-row top-k lists ``idx, sim`` (same order and ties)."""
    b, k = idx.shape
    order = np.argsort(rows, kind="stable")
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=b)
    pos = np.arange(len(rows)) - (np.cumsum(counts) - counts)[rows]
    key = np.full((b, k + counts.max(initial=0)), np.iinfo(np.uint64).max, np.uint64)
    key[:, :k] = _desc_key(sim, idx)
    key[rows, k + pos] = _desc_key(vals, cols)
    return _from_key(np.sort(key, axis=1)[:, :k])


def exact_top_k(queries, pool, k, *, exclude=None, block_rows=None):
    """Exact top-``k`` of every query by cosine, in blocks of query rows (see :func:`workbench.core.knn.top_k`)."""
    queries = np.asarray(queries, np.float32)
    pool = np.asarray(pool, np.float32)
    n, m = len(queries), len(pool)
    k = min(int(k), m)
    block_rows = block_rows or max(1, BLOCK_ELEMENTS // max(m, 1))
    idx = np.empty((n, k), np.int64)
    sim = np.empty((n, k), np.float32)
    for s in range(0, n, block_rows):
        rows = np.arange(s, min(s + block_rows, n))
        if len(rows) <= _SMALL_BATCH:
            S = np.einsum("ij,kj->ik", queries[rows], pool, optimize=False)
        else:
            S = queries[rows] @ pool.T
        if exclude is not None:
            S[exclude(rows)] = -np.inf
        idx[rows], sim[rows] = block_top_k(S, k)
    return idx, sim


def _mask_groups(S, rows, cols, groups, shared):
    """Set ``S[i, j] = -inf`` where rows ``i`` and columns ``j`` share a group (only rows in a shared group look)."""
    look = np.flatnonzero(shared[rows])
    if len(look):
        same = groups[rows[look]][:, None] == groups[cols][None, :]
        S[look] = np.where(same, -np.inf, S[look])


def self_top_k(x, k, *, groups=None, block_rows=None):
    """Each row's ``k`` most similar *other* rows (leave-one-out), exact, one product per pair of row blocks.

    Parameters
    ----------
    x : (n, d) float32, L2-normalised rows
    k : int
    groups : (n,) labels, optional
        Leave a row's whole group out with it. Rows left with fewer than
        ``k`` neighbours get index -1 and similarity ``-inf``.
    block_rows : int, optional
        Rows per block (default: a block of about 64 MB).

    Returns
    -------
    idx, sim : (n, k) arrays, most similar first, ties to the lower index.
    """
    x = np.ascontiguousarray(x, np.float32)
    n = len(x)
    k = min(int(k), n)
    idx = np.full((n, k), -1, np.int64)
    sim = np.full((n, k), -np.inf, np.float32)
    if groups is not None:
        groups = np.unique(np.asarray(groups), return_inverse=True)[1]
        shared = np.bincount(groups)[groups] > 1
    block = int(block_rows or max(1, int(np.sqrt(BLOCK_ELEMENTS))))
    spans = [np.arange(a, min(a + block, n)) for a in range(0, n, block)]

    def products(rows, cols):
        S = x[rows] @ x[cols].T
        if rows[0] == cols[0]:
            np.fill_diagonal(S, -np.inf)
        if groups is not None:
            _mask_groups(S, rows, cols, groups, shared)
        return S

    for rows in spans:  # each row's first k best, from its own block
        got_idx, got_sim = block_top_k(products(rows, rows), k, col_offset=rows[0])
        idx[rows, :got_idx.shape[1]], sim[rows, :got_idx.shape[1]] = got_idx, got_sim
    for i, rows in enumerate(spans):  # then every other pair of blocks once, read from both sides:
        for cols in spans[i + 1:]:  # only entries reaching a row's k-th best so far can enter its list
            S = products(rows, cols)
            r, c = _nonzero(S >= sim[rows, k - 1][:, None])
            idx[rows], sim[rows] = _merge_entries(idx[rows], sim[rows], r, c + cols[0], S[r, c])
            r, c = _nonzero(S >= sim[cols, k - 1][None, :])
            idx[cols], sim[cols] = _merge_entries(idx[cols], sim[cols], c, r + rows[0], S[r, c])
    idx[~np.isfinite(sim)] = -1
    return idx, sim


@dataclass(frozen=True)
class SearchCost:
    """Estimated seconds of one search by each method (from the constants in :mod:`workbench.config`)."""

    exact: float
    hnsw: float


def search_cost(n_queries, n_pool, dim, *, self_search=False):
    """Estimated seconds of exact and of HNSW search: ``n_queries`` rows against ``n_pool`` rows of ``dim``.

    Exact: multiply-adds over the measured matrix-product throughput plus
    the selection per similarity (a self search computes half the products
    and still selects over every pair). HNSW: building the graph plus the measured search time per
    query, both growing with ``dim``.
    """
    pairs = float(n_queries) * float(n_pool)
    products = pairs * (0.5 if self_search else 1.0)
    exact = products * 2.0 * dim / _config.SEARCH_EXACT_FLOPS + pairs * _config.SEARCH_SELECT_S
    hnsw = dim * (n_pool * _config.SEARCH_HNSW_BUILD_S + n_queries * _config.SEARCH_HNSW_QUERY_S)
    return SearchCost(exact=exact, hnsw=hnsw)


def choose_search(n_queries, n_pool, dim, *, self_search=False, ann=None):
    """``"hnsw"`` or ``"exact"``: ``ann`` when given, otherwise the cheaper by :func:`search_cost`.

    HNSW is only chosen past :data:`workbench.config.SEARCH_HNSW_MIN_ROWS`
    pool rows and when it is estimated at least
    :data:`workbench.config.SEARCH_HNSW_MARGIN` times faster: exact search
    has no recall to report.
    """
    if ann is not None:
        return "hnsw" if ann else "exact"
    if n_pool < _config.SEARCH_HNSW_MIN_ROWS:
        return "exact"
    cost = search_cost(n_queries, n_pool, dim, self_search=self_search)
    return "hnsw" if cost.hnsw * _config.SEARCH_HNSW_MARGIN < cost.exact else "exact"


@dataclass(frozen=True)
class Neighbors:
    """Nearest pool rows of a batch of queries, and how they were found."""

    idx: np.ndarray      # (n, k) pool row indices, most similar first
    sim: np.ndarray      # (n, k) cosine similarities
    method: str          # "exact" or "hnsw"
    recall: float = None  # recall@k against exact search on a sample ("hnsw" only)


def _recall(queries, pool, idx, k, sample, seed):
    rows = np.random.default_rng(seed).choice(len(queries), min(sample, len(queries)), replace=False)
    exact, _ = exact_top_k(queries[rows], pool, k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(idx[rows], exact)]))


def nearest_neighbors(queries, pool, k, *, ann=None, recall_sample=_config.ANN_RECALL_SAMPLE, seed=_config.SEED):
    """Each query's ``k`` most similar pool rows, exact or through HNSW as :func:`choose_search` decides.

    The batch path of coverage (every logged message against the pool).
    An HNSW search reports its recall@k against exact search on
    ``recall_sample`` queries; when faiss is missing and ``ann`` was not
    asked for, the search is exact.

    Parameters
    ----------
    queries, pool : float32 arrays of L2-normalised rows
    k : int
    ann : bool, optional
        Force HNSW (True) or exact search (False); default by cost.

    Returns
    -------
    Neighbors
    """
    queries, pool = np.asarray(queries, np.float32), np.asarray(pool, np.float32)
    k = min(int(k), len(pool))
    method = choose_search(len(queries), len(pool), pool.shape[1], ann=ann)
    if method == "hnsw":
        from .ann import HNSWIndex

        try:
            idx, sim = HNSWIndex.build(pool).search(queries, k)
        except MissingDependencyError:
            if ann:
                raise
            log.warning("HNSW search would be faster here but faiss is missing; searching exactly")
        else:
            return Neighbors(idx, sim, "hnsw", _recall(queries, pool, idx, k, recall_sample, seed))
    idx, sim = exact_top_k(queries, pool, k)
    return Neighbors(idx, sim, "exact")
