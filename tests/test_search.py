"""Exact blocked search (core.search) against a plain numpy reference, ties included, and the cost model's choice."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.helpers import unit_rows
from workbench import config
from workbench.analysis.evaluate import loo_neighbors
from workbench.core.knn import top_k
from workbench.core.search import (BLOCK_ELEMENTS, block_top_k, choose_search, exact_top_k, merge_top_k,
                                   nearest_neighbors, reduced_plans, reduced_top_k, search_cost, self_top_k)
from workbench.dataset.duplicates import max_similarity

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(S, k):
    """Plain numpy: sort every row by similarity (descending), ties to the lower column."""
    S = np.asarray(S, np.float32)
    cols = np.broadcast_to(np.arange(S.shape[1]), S.shape)
    order = np.lexsort((cols, -S), axis=1)[:, :min(k, S.shape[1])]
    return order, np.take_along_axis(S, order, axis=1)


def tied_matrix(seed, rows, cols, levels, masked):
    """Similarities drawn from ``levels`` values (so ties are common), a share of them masked to -inf."""
    rng = np.random.default_rng(seed)
    S = rng.integers(0, levels, (rows, cols)).astype(np.float32) / levels
    S[rng.random((rows, cols)) < masked] = -np.inf
    return S


def tied_vectors(seed, n, d, copies):
    """Unit rows with exact duplicates (tied similarities), as a pool with repeated messages has."""
    rng = np.random.default_rng(seed)
    x = unit_rows(rng, n, d)
    x[rng.integers(0, n, copies)] = x[rng.integers(0, n, copies)]
    return x


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 40), cols=st.integers(1, 3000),
       k=st.integers(1, 40), levels=st.sampled_from([2, 5, 50, 10**6]), masked=st.sampled_from([0.0, 0.3, 0.99]))
def test_block_top_k_equals_a_full_sort_ties_included(seed, rows, cols, k, levels, masked):
    # up to 120,000 entries: both the small-block path and the run-maxima path are drawn
    S = tied_matrix(seed, rows, cols, levels, masked)
    idx, sim = block_top_k(S, k)
    ref_idx, ref_sim = reference(S, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(sim, ref_sim)
    t_idx, t_sim = block_top_k(np.ascontiguousarray(S.T).T, k, col_offset=5)  # a transposed (Fortran) block
    np.testing.assert_array_equal(t_idx, ref_idx + 5)
    np.testing.assert_array_equal(t_sim, ref_sim)


def test_the_run_maxima_path_is_the_one_taken_on_a_big_block():
    S = tied_matrix(0, 64, 4096, 7, 0.1)
    assert S.size >= 1 << 16 and S.shape[1] // 8 >= 4 * 15
    np.testing.assert_array_equal(block_top_k(S, 15)[0], reference(S, 15)[0])


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), m=st.integers(1, 400), k=st.integers(1, 20),
       block=st.one_of(st.integers(1, 8), st.integers(9, 300)))
def test_exact_top_k_matches_numpy_and_blocked_matches_unblocked(seed, n, m, k, block):
    q = tied_vectors(seed, n, 12, n // 4)
    pool = np.concatenate([q[: m // 3], tied_vectors(seed + 1, m - m // 3, 12, m // 4)])
    idx, sim = exact_top_k(q, pool, k, block_rows=block)
    if min(block, n) > 8 and n % block in range(9, block):  # every block through BLAS (einsum rounds differently)
        whole_idx, whole_sim = exact_top_k(q, pool, k, block_rows=n)
        np.testing.assert_array_equal(idx, whole_idx)
        np.testing.assert_array_equal(sim, whole_sim)
    ref_idx, ref_sim = reference(q @ pool.T, k)
    np.testing.assert_allclose(sim, ref_sim, atol=1e-6)
    # the same neighbours, up to the order of similarities equal within float rounding
    same = (idx == ref_idx) | np.isclose(np.take_along_axis(q @ pool.T, idx, axis=1), ref_sim, atol=1e-6)
    assert same.all()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 400), k=st.integers(1, 20), block=st.integers(1, 400),
       group_size=st.sampled_from([0, 1, 3, 50]))
def test_self_top_k_equals_leave_one_out_by_full_matrix(seed, n, k, block, group_size):
    x = tied_vectors(seed, n, 10, n // 5)
    groups = None if group_size == 0 else np.random.default_rng(seed).permutation(n) // group_size
    S = x @ x.T
    np.fill_diagonal(S, -np.inf)
    if groups is not None:
        S[groups[:, None] == groups[None, :]] = -np.inf
    idx, sim = self_top_k(x, k, groups=groups, block_rows=block)
    ref_idx, ref_sim = reference(S, k)
    np.testing.assert_allclose(sim, ref_sim, atol=1e-6)
    found = np.isfinite(ref_sim)
    assert (idx[~found] == -1).all()  # fewer than k others (tiny pools, big groups): -1 / -inf
    close = np.isclose(np.take_along_axis(S, np.maximum(idx, 0), axis=1), ref_sim, atol=1e-6)
    assert ((idx == ref_idx) | close)[found].all()
    again_idx, again_sim = self_top_k(x, k, groups=groups, block_rows=n)  # unblocked: the same up to rounding
    np.testing.assert_allclose(again_sim, sim, atol=1e-6)
    close = np.isclose(np.take_along_axis(S, np.maximum(again_idx, 0), axis=1), sim, atol=1e-6)
    assert ((again_idx == idx) | close)[found].all()


def test_merge_keeps_the_best_with_the_tie_rule():
    idx, sim = merge_top_k(np.array([[4, 9]]), np.array([[0.5, 0.2]], np.float32),
                           np.array([[2, 7]]), np.array([[0.5, 0.3]], np.float32), 3)
    assert idx.tolist() == [[2, 4, 7]]


def test_leave_one_out_neighbours_are_the_exact_ones_below_the_index_size():
    x = tied_vectors(3, 500, 16, 60)
    groups = np.arange(500) // 4
    for g in (None, groups):
        idx, sim = loo_neighbors(x, 7, groups=g)
        S = x @ x.T
        np.fill_diagonal(S, -np.inf)
        if g is not None:
            S[g[:, None] == g[None, :]] = -np.inf
        np.testing.assert_allclose(sim, reference(S, 7)[1], atol=1e-6)


@pytest.mark.parametrize("n_queries, n_pool, dim", [(1, 10, 8), (50_000, 50_000, 896), (10**6, 4020, 896),
                                                    (10**6, 50_000, 384), (10, 10**6, 384), (10**7, 10**6, 896)])
def test_the_cost_model_choice_is_deterministic_and_follows_the_estimates(n_queries, n_pool, dim):
    for self_search in (False, True):
        picks = {choose_search(n_queries, n_pool, dim, self_search=self_search) for _ in range(3)}
        assert len(picks) == 1
        cost = search_cost(n_queries, n_pool, dim, self_search=self_search)
        options = {"exact": cost.exact, "reduced": cost.reduced * config.SEARCH_REDUCED_MARGIN}
        if n_pool >= config.SEARCH_HNSW_MIN_ROWS:
            options["hnsw"] = cost.hnsw * config.SEARCH_HNSW_MARGIN
        assert picks.pop() == min(options, key=options.get)
        assert not self_search or cost.reduced == float("inf")  # leave-one-out has no reduced path
        assert choose_search(n_queries, n_pool, dim, ann=True) == "hnsw"
        assert choose_search(n_queries, n_pool, dim, ann=False) == "exact"


def test_the_cost_model_keeps_exact_search_for_the_bundled_pool_and_an_index_for_a_huge_one():
    assert choose_search(4020, 4020, 896, self_search=True) == "exact"
    assert choose_search(10**7, 10**7, 896, self_search=True) == "hnsw"
    assert choose_search(300, 4020, 896) == "exact"  # a small batch: the recall check alone costs as much
    # 1M-query coverage: reduced search measured no faster than exact here (config.SEARCH_REDUCED_MARGIN)
    assert choose_search(10**6, 4020, 896) == "exact"
    assert search_cost(10**6, 4020, 896).reduced < search_cost(10**6, 4020, 896).exact


def test_nearest_neighbors_exact_and_through_an_index_with_its_recall():
    rng = np.random.default_rng(5)
    centers = unit_rows(rng, 30, 32)
    pool = centers[rng.integers(0, 30, 2000)] + 0.3 * unit_rows(rng, 2000, 32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    q = pool[:300] + 0.05 * unit_rows(rng, 300, 32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = nearest_neighbors(q, pool, 5)
    assert exact.method == "exact" and exact.recall is None
    np.testing.assert_array_equal(exact.idx, top_k(q, pool, 5)[0])
    pytest.importorskip("faiss")
    approx = nearest_neighbors(q, pool, 5, ann=True, recall_sample=100)
    assert approx.method == "hnsw" and 0.95 <= approx.recall <= 1.0
    np.testing.assert_allclose(max_similarity(q, pool), exact.sim[:, 0], atol=1e-6)
    np.testing.assert_allclose(max_similarity(q, pool), (q @ pool.T).max(axis=1), atol=1e-6)


def test_blocks_stay_bounded():
    assert BLOCK_ELEMENTS * 4 <= 64 * 2**20


def clustered(seed, n_pool, n_queries, d, noise=0.3):
    """A pool of noisy copies of a few centres, and queries near pool rows (as traffic near the pool is)."""
    rng = np.random.default_rng(seed)
    centers = unit_rows(rng, 12, d)
    pool = centers[rng.integers(0, 12, n_pool)] + noise * unit_rows(rng, n_pool, d)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    q = pool[rng.integers(0, n_pool, n_queries)] + 0.2 * unit_rows(rng, n_queries, d)
    return q / np.linalg.norm(q, axis=1, keepdims=True), pool


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), m=st.integers(1, 150), k=st.integers(1, 20),
       dims=st.integers(1, 16), extra=st.integers(0, 10), block=st.integers(1, 300))
def test_reduced_search_with_every_pool_row_a_candidate_is_exact(seed, n, m, k, dims, extra, block):
    q = tied_vectors(seed, n, 16, n // 4)
    pool = np.concatenate([q[: m // 3], tied_vectors(seed + 1, m - m // 3, 16, m // 4)])
    idx, sim = reduced_top_k(q, pool, k, dims=dims, candidates=m + extra, block_rows=block)
    S = q @ pool.T
    ref_idx, ref_sim = reference(S, k)
    np.testing.assert_allclose(sim, ref_sim, atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(S, idx, axis=1), sim, atol=1e-6)  # sim is idx's similarity
    assert ((idx == ref_idx) | np.isclose(np.take_along_axis(S, idx, axis=1), ref_sim, atol=1e-6)).all()
    assert all(len(set(row)) == len(row) for row in idx.tolist())


def test_reduced_search_reports_its_sampled_recall_and_is_deterministic():
    q, pool = clustered(1, 3000, 4000, 64)
    exact_idx, _ = exact_top_k(q, pool, 5)
    got = nearest_neighbors(q, pool, 5, method="reduced", plans=[(48, 60)], recall_sample=500)
    assert got.method == "reduced" and config.SEARCH_REDUCED_MIN_RECALL <= got.recall <= 1.0
    rows = np.sort(np.random.default_rng(config.SEED).choice(len(q), 500, replace=False))
    sampled = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got.idx[rows], exact_idx[rows])])
    assert got.recall == pytest.approx(sampled)
    again = nearest_neighbors(q, pool, 5, method="reduced", plans=[(48, 60)], recall_sample=500)
    np.testing.assert_array_equal(again.idx, got.idx)
    assert again.recall == got.recall
    np.testing.assert_allclose(got.sim, np.take_along_axis(q @ pool.T, got.idx, axis=1), atol=1e-6)


def test_reduced_search_falls_back_to_exact_below_the_recall_floor():
    q, pool = clustered(2, 2000, 1500, 64, noise=1.0)
    got = nearest_neighbors(q, pool, 7, method="reduced", plans=[(1, 7)], recall_sample=300)
    assert got.method == "exact" and got.recall is None
    np.testing.assert_array_equal(got.idx, exact_top_k(q, pool, 7)[0])
    plan_recall = np.mean([len(set(a) & set(b)) / 7 for a, b in
                           zip(reduced_top_k(q, pool, 7, dims=1, candidates=7)[0], got.idx)])
    assert plan_recall < config.SEARCH_REDUCED_MIN_RECALL  # the plan really was too coarse


def test_reduced_plans_are_cheapest_first_narrower_than_the_vectors_and_have_k_candidates():
    plans = reduced_plans(896, 4020, 7)
    assert plans and all(dims <= 448 and 7 <= c < 4020 for dims, c in plans)
    assert plans == sorted(plans, key=lambda p: 2 * p[0] * (896 + 4020) / config.SEARCH_EXACT_FLOPS
                           + p[1] * 896 * config.SEARCH_RERANK_S)
    assert reduced_plans(8, 10, 1) == []
