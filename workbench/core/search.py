"""Exact top-k similarity search in blocks (numpy only), reduced search, and the cost model that picks a method.

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

Reduced search (:func:`reduced_top_k`, coverage only): exact top-c in the
pool's leading principal directions, then exact re-ranking; it trains
nothing but a d x d eigendecomposition, and keeps the cheapest plan whose
recall@k on a seeded sample reaches 0.99, else the search is exact.

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

__all__ = ["GROUP", "BLOCK_ELEMENTS", "Neighbors", "products", "block_top_k", "merge_top_k", "exact_top_k", "self_top_k",
           "principal_basis", "reduced_top_k", "reduced_plans", "nearest_neighbors", "SearchCost", "search_cost",
           "choose_search"]

#: Columns per run whose maximum is taken first (8: a 4,096-column block keeps 512 maxima to partition).
GROUP = 8
#: Similarities per block (rows x columns): about 64 MB of float32.
BLOCK_ELEMENTS = 16 << 20
#: Queries per block of reduced search's exact re-ranking (see :func:`_rerank`).
RERANK_ROWS = 256
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


def products(queries, pool):
    """``queries @ pool.T`` in float32: a plain loop for a router's few queries (up to ``_SMALL_BATCH``), where
    multithreaded BLAS's spinning threads would slow the embedding model's own next call down, BLAS otherwise."""
    if len(queries) <= _SMALL_BATCH:
        return np.einsum("ij,kj->ik", queries, pool, optimize=False)
    return queries @ pool.T


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
        S = products(queries[rows], pool)
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
    reduced: float = float("inf")  # the cheapest plan of :func:`reduced_plans` (inf for leave-one-out)


def search_cost(n_queries, n_pool, dim, *, self_search=False):
    """Estimated seconds of exact, HNSW and reduced search: ``n_queries`` rows against ``n_pool`` rows of ``dim``.

    Exact: multiply-adds over the measured matrix-product throughput plus
    the selection per similarity (a self search computes half the products
    and still selects over every pair). HNSW: building the graph plus the measured search time per
    query, both growing with ``dim``. Reduced (not for a self search): its
    cheapest plan's projection, product and selection in the reduced space,
    the exact re-ranking of its candidates, and the exact search of its
    recall sample.
    """
    pairs = float(n_queries) * float(n_pool)
    products = pairs * (0.5 if self_search else 1.0)
    exact = products * 2.0 * dim / _config.SEARCH_EXACT_FLOPS + pairs * _config.SEARCH_SELECT_S
    hnsw = dim * (n_pool * _config.SEARCH_HNSW_BUILD_S + n_queries * _config.SEARCH_HNSW_QUERY_S)
    plans = [] if self_search else reduced_plans(dim, n_pool, 1)
    reduced = min((_reduced_cost(n_queries, n_pool, dim, *plan) for plan in plans), default=float("inf"))
    reduced += exact * min(1.0, _config.ANN_RECALL_SAMPLE / max(float(n_queries), 1.0))  # its recall check
    return SearchCost(exact=exact, hnsw=hnsw, reduced=reduced)


def _reduced_cost(n_queries, n_pool, dim, dims, candidates):
    """Estimated seconds of :func:`reduced_top_k` with ``dims`` reduced dimensions and ``candidates`` per query."""
    flops = 2.0 * float(n_queries) * dims * (dim + n_pool) / _config.SEARCH_EXACT_FLOPS
    select = float(n_queries) * n_pool * _config.SEARCH_SELECT_S
    return flops + select + float(n_queries) * candidates * dim * _config.SEARCH_RERANK_S


def choose_search(n_queries, n_pool, dim, *, self_search=False, ann=None):
    """``"hnsw"``, ``"reduced"`` or ``"exact"``: ``ann`` when given, otherwise the cheapest by :func:`search_cost`.

    HNSW is only chosen past :data:`workbench.config.SEARCH_HNSW_MIN_ROWS`
    pool rows and when it is estimated at least
    :data:`workbench.config.SEARCH_HNSW_MARGIN` times faster than exact
    search (which has no recall to report); reduced search likewise by
    :data:`workbench.config.SEARCH_REDUCED_MARGIN`, and never for a self
    search. ``ann=True`` forces HNSW, ``ann=False`` exact search.
    """
    if ann is not None:
        return "hnsw" if ann else "exact"
    cost = search_cost(n_queries, n_pool, dim, self_search=self_search)
    options = [("exact", cost.exact), ("reduced", cost.reduced * _config.SEARCH_REDUCED_MARGIN)]
    if n_pool >= _config.SEARCH_HNSW_MIN_ROWS:
        options.append(("hnsw", cost.hnsw * _config.SEARCH_HNSW_MARGIN))
    return min(options, key=lambda option: option[1])[0]


def principal_basis(pool, dims):
    """The pool's top ``dims`` principal directions (uncentred: right singular vectors), a (d, dims) float32 basis.

    From the eigenvectors of the d x d Gram matrix in float64 (cheaper than
    an SVD of the pool, and exact enough for a candidate filter).
    """
    pool = np.asarray(pool, np.float64)
    _, vectors = np.linalg.eigh(pool.T @ pool)
    return np.ascontiguousarray(vectors[:, ::-1][:, :int(dims)], np.float32)


def reduced_plans(dim, n_pool, k):
    """``(dims, candidates)`` plans of reduced search to try, cheapest first (a plan per rung, none of full width)."""
    plans = [(dims, max(int(k) * factor, 4)) for dims in _config.SEARCH_REDUCED_DIMS
             for factor in _config.SEARCH_REDUCED_CANDIDATES]
    plans = [(d, c) for d, c in plans if d <= dim // 2 and c < n_pool]
    return sorted(set(plans), key=lambda plan: _reduced_cost(1, n_pool, dim, *plan))


def reduced_top_k(queries, pool, k, *, dims, candidates, basis=None, block_rows=None):
    """Approximate top-``k`` by cosine: exact search in the pool's principal subspace, then exact re-ranking.

    Each query's ``candidates`` most similar pool rows in the ``dims``
    leading principal directions (with those of the queries re-ranked in
    the same block, :func:`_rerank`) are re-ranked by their full dot
    products. Exact when ``candidates`` reaches the pool size (up to the
    rounding of the products); ties to the lower pool index.

    Parameters
    ----------
    queries, pool : float32 arrays of L2-normalised rows
    k, dims, candidates : int
        ``candidates`` is raised to ``k`` when smaller.
    basis : (d, >= dims) float32, optional
        From :func:`principal_basis` (computed when not given).
    block_rows : int, optional
        Query rows per block (default: a reduced product of about 64 MB).

    Returns
    -------
    idx : int64 (n, k), sim : float32 (n, k)
    """
    queries, pool = np.asarray(queries, np.float32), np.asarray(pool, np.float32)
    n, m = len(queries), len(pool)
    k = min(int(k), m)
    c = min(max(int(candidates), k), m)
    basis = principal_basis(pool, dims) if basis is None else np.asarray(basis, np.float32)[:, :int(dims)]
    pool_reduced = pool @ basis
    block_rows = block_rows or max(1, BLOCK_ELEMENTS // max(m, 1))
    cand = np.empty((n, c), np.int32)
    for s in range(0, n, block_rows):
        q = queries[s:s + block_rows]
        cand[s:s + len(q)] = block_top_k((q @ basis) @ pool_reduced.T, c)[0]
    return _rerank(queries, pool, cand, k)


def _rerank(queries, pool, cand, k):
    """Exact top-``k`` of each query over the union of its block's candidates (a superset of its own).

    Queries are taken in the order of their best candidate, so a block's
    candidates overlap and one small matrix product re-ranks them all (far
    cheaper than gathering ``candidates`` pool rows per query). The union is
    sorted, so ties still go to the lower pool index.
    """
    n = len(queries)
    idx, sim = np.empty((n, k), np.int64), np.empty((n, k), np.float32)
    order = np.argsort(cand[:, 0], kind="stable")
    for s in range(0, n, RERANK_ROWS):
        rows = order[s:s + RERANK_ROWS]
        union = np.unique(cand[rows])
        top, sim[rows] = block_top_k(queries[rows] @ pool[union].T, k)
        idx[rows] = union[top]
    return idx, sim


@dataclass(frozen=True)
class Neighbors:
    """Nearest pool rows of a batch of queries, and how they were found."""

    idx: np.ndarray      # (n, k) pool row indices, most similar first
    sim: np.ndarray      # (n, k) cosine similarities
    method: str          # "exact", "reduced" or "hnsw"
    recall: float = None  # recall@k against exact search on a sample ("hnsw" and "reduced" only)


def _sample_rows(n, sample, seed):
    return np.sort(np.random.default_rng(seed).choice(n, min(sample, n), replace=False))


def _overlap(idx, exact, k):
    """Mean share of each row's exact ``k`` neighbours found in ``idx`` (recall@k)."""
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(idx, exact)]))


def _recall(queries, pool, idx, k, sample, seed):
    rows = _sample_rows(len(queries), sample, seed)
    exact, _ = exact_top_k(queries[rows], pool, k)
    return _overlap(idx[rows], exact, k)


def _reduced(queries, pool, k, plans, sample, seed):
    """Reduced search with the first of ``plans`` whose recall@k on a seeded sample reaches the floor; else None.

    Returns ``(idx, sim, recall)``: the recall is the whole search's, on
    the same sample, and is also held to the floor.
    """
    floor = _config.SEARCH_REDUCED_MIN_RECALL
    rows = _sample_rows(len(queries), sample, seed)
    exact, _ = exact_top_k(queries[rows], pool, k)
    basis = principal_basis(pool, max((dims for dims, _ in plans), default=0))
    for dims, candidates in plans:
        got, _ = reduced_top_k(queries[rows], pool, k, dims=dims, candidates=candidates, basis=basis)
        recall = _overlap(got, exact, k)
        log.debug("reduced search, %d dims, %d candidates: sampled recall@%d %.4f", dims, candidates, k, recall)
        if recall >= floor:
            idx, sim = reduced_top_k(queries, pool, k, dims=dims, candidates=candidates, basis=basis)
            recall = _overlap(idx[rows], exact, k)
            if recall >= floor:
                return idx, sim, recall
    log.info("reduced search reaches no recall@%d of %.2f on its sample; searching exactly", k, floor)
    return None


def nearest_neighbors(queries, pool, k, *, ann=None, method=None, plans=None,
                      recall_sample=_config.ANN_RECALL_SAMPLE, seed=_config.SEED):
    """Each query's ``k`` most similar pool rows, exact, reduced or through HNSW as :func:`choose_search` decides.

    The batch path of coverage (every logged message against the pool).
    An approximate search reports its recall@k against exact search on
    ``recall_sample`` seeded queries. A reduced search keeps the first plan
    whose recall reaches :data:`workbench.config.SEARCH_REDUCED_MIN_RECALL`
    and is exact when none does; an HNSW search falls back to exact when
    faiss is missing and ``ann`` was not asked for.

    Parameters
    ----------
    queries, pool : float32 arrays of L2-normalised rows
    k : int
    ann : bool, optional
        Force HNSW (True) or exact search (False); default by cost.
    method : {"exact", "reduced", "hnsw"}, optional
        Force a method (overrides ``ann``).
    plans : list of (dims, candidates), optional
        Reduced search's plans, tried in order (default :func:`reduced_plans`).

    Returns
    -------
    Neighbors
    """
    queries, pool = np.asarray(queries, np.float32), np.asarray(pool, np.float32)
    k = min(int(k), len(pool))
    forced = method is not None
    method = method or choose_search(len(queries), len(pool), pool.shape[1], ann=ann)
    if method == "reduced":
        if plans is None:  # the plans estimated cheaper than exact search by the margin
            exact = search_cost(len(queries), len(pool), pool.shape[1]).exact
            plans = [plan for plan in reduced_plans(pool.shape[1], len(pool), k) if exact >
                     _reduced_cost(len(queries), len(pool), pool.shape[1], *plan) * _config.SEARCH_REDUCED_MARGIN]
        found = _reduced(queries, pool, k, plans, recall_sample, seed)
        if found is not None:
            return Neighbors(*found[:2], "reduced", found[2])
    if method == "hnsw":
        from .ann import HNSWIndex

        try:
            idx, sim = HNSWIndex.build(pool).search(queries, k)
        except MissingDependencyError:
            if ann or forced:
                raise
            log.warning("HNSW search would be faster here but faiss is missing; searching exactly")
        else:
            return Neighbors(idx, sim, "hnsw", _recall(queries, pool, idx, k, recall_sample, seed))
    idx, sim = exact_top_k(queries, pool, k)
    return Neighbors(idx, sim, "exact")
