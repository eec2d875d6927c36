"""Coverage of logged traffic by the pool, and clusters of the uncovered part (synthetic vectors, no model)."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.analysis.uncovered import coverage_of, pool_neighbour_similarities, uncovered_clusters
from workbench.errors import ConfigError, WorkbenchError


def unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blob(rng, centre, n, spread=0.05):
    return unit(centre[None, :] + spread * rng.standard_normal((n, len(centre))))


def test_pool_neighbour_similarity_is_leave_one_out():
    pool = unit([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0, 1, 0]])
    sim = pool_neighbour_similarities(pool)
    assert sim[0] == pytest.approx(pool[0] @ pool[1])  # not 1: its own row is skipped
    assert sim[2] == pytest.approx(1.0) and sim[3] == pytest.approx(1.0)  # an exact duplicate still counts


def test_far_traffic_is_uncovered_and_near_traffic_is_not():
    rng = np.random.default_rng(0)
    pool = np.vstack([blob(rng, np.eye(16)[i], 50) for i in range(4)])
    near = unit(pool[::6][:30] + 0.001 * rng.standard_normal((30, 16)))  # next to pool messages
    far = blob(rng, np.eye(16)[9], 10)
    cov = coverage_of(pool, np.vstack([near, far]))
    assert cov.uncovered.tolist() == [False] * 30 + [True] * 10
    assert cov.share == pytest.approx(0.25)
    assert cov.threshold == pytest.approx(np.quantile(cov.pool_similarity, 0.05))
    assert len(cov.pool_similarity) == 200


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 40), st.integers(0, 30), st.floats(0.01, 0.99))
def test_share_is_the_share_below_the_pool_quantile(seed, n_pool, n_traffic, q):
    rng = np.random.default_rng(seed)
    pool, traffic = unit(rng.standard_normal((n_pool, 8))), unit(rng.standard_normal((n_traffic, 8)))
    cov = coverage_of(pool, traffic, quantile=q)
    best = (traffic @ pool.T).max(axis=1) if n_traffic else np.zeros(0)
    np.testing.assert_allclose(cov.similarity, best, atol=1e-5)
    assert cov.threshold == pytest.approx(float(np.quantile(cov.pool_similarity, q)))
    expected = cov.similarity < cov.threshold
    assert np.array_equal(cov.uncovered, expected)
    assert (np.isnan(cov.share) if n_traffic == 0 else cov.share == pytest.approx(expected.mean()))


def test_bad_parameters_are_one_line_errors():
    with pytest.raises(ConfigError, match="quantile must be in"):
        coverage_of(unit(np.eye(3)), unit(np.eye(3)), quantile=1.5)
    with pytest.raises(WorkbenchError, match="at least 2 rows"):
        coverage_of(unit(np.eye(3))[:1], unit(np.eye(3)))
    with pytest.raises(ConfigError, match="same rows"):
        uncovered_clusters(unit(np.eye(3)), pd.DataFrame({"text": ["a"]}))


def clustered_traffic():
    rng = np.random.default_rng(1)
    a, b = blob(rng, np.eye(16)[3], 20, 0.02), blob(rng, np.eye(16)[7], 12, 0.02)
    texts = [f"alpha {i}" for i in range(20)] + [f"beta {i}" for i in range(12)]
    frame = pd.DataFrame({"text": texts, "tier": ["cheap"] * 15 + ["strong"] * 5 + ["medium"] * 12,
                          "lang": ["en"] * 20 + ["de"] * 10 + ["fr"] * 2})
    return np.vstack([a, b]), frame


def test_clusters_have_sizes_languages_tiers_and_five_examples():
    x, frame = clustered_traffic()
    labels, clusters = uncovered_clusters(x, frame, min_cluster_size=5)
    assert clusters["size"].tolist() == [20, 12]
    assert clusters["languages"].tolist() == ["en 20", "de 10, fr 2"]
    assert clusters["tiers"].tolist() == ["cheap 15, strong 5", "medium 12"]
    assert all(len(e) == 5 for e in clusters["examples"])
    assert all(t.startswith("alpha") for t in clusters["examples"][0])
    assert (labels[:20] == clusters["cluster"][0]).all() and (labels[20:] == clusters["cluster"][1]).all()


def test_clusters_are_deterministic_and_language_is_detected_without_a_column():
    x, frame = clustered_traffic()
    first = uncovered_clusters(x, frame.drop(columns="lang"), language=lambda t: t.split()[0][:2])
    second = uncovered_clusters(x, frame.drop(columns="lang"), language=lambda t: t.split()[0][:2])
    assert np.array_equal(first[0], second[0]) and first[1].equals(second[1])
    assert first[1]["languages"].tolist() == ["al 20", "be 12"]


def test_too_few_messages_give_no_cluster():
    x, frame = clustered_traffic()
    labels, clusters = uncovered_clusters(x[:3], frame[:3], min_cluster_size=5)
    assert (labels == -1).all() and clusters.empty and "examples" in clusters


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), max_size=60), st.integers(0, 70), st.integers(0, 5))
def test_map_rows_keep_the_uncovered_first_and_stay_within_n(flags, n, seed):
    from workbench.analysis.uncovered import map_rows

    flags = np.array(flags, bool)
    rows = map_rows(flags, n, seed=seed)
    assert len(rows) == min(n, len(flags)) and len(set(rows.tolist())) == len(rows)
    assert list(rows) == sorted(rows)
    assert flags[rows].sum() == min(n, flags.sum())  # every uncovered one fits before a covered one is drawn
    assert np.array_equal(rows, map_rows(flags, n, seed=seed))
