"""Confidence against coverage: the cap from the pool's own nearest similarities (core.coverage)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.coverage import CoverageCap
from workbench.errors import ArtifactError, ConfigError

POOL_SIMS = np.linspace(0.2, 0.8, 601)  # a pool whose nearest similarities spread evenly over 0.2..0.8

sims = st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(pool=sims, queries=sims, level=st.floats(0.01, 1.0))
def test_the_factor_is_in_0_1_and_never_falls_as_similarity_rises(pool, queries, level):
    cap = CoverageCap.fit(pool, level=level)
    q = np.sort(np.asarray(queries))
    f = cap.factor(q)
    assert ((0 <= f) & (f <= 1)).all()
    assert (np.diff(f) >= -1e-12).all()


@settings(max_examples=60, deadline=None)
@given(pool=sims, level=st.floats(0.01, 1.0))
def test_below_every_pool_message_the_factor_is_0_and_above_them_all_1(pool, level):
    cap = CoverageCap.fit(pool, level=level)
    assert cap.factor([min(pool) - 0.01])[0] == 0.0
    assert cap.factor([max(pool) + 0.01])[0] == 1.0


def test_the_bulk_of_the_pool_keeps_its_confidence_and_the_tail_falls_linearly():
    cap = CoverageCap.fit(POOL_SIMS, level=0.1)
    assert cap.factor([0.26, 0.5, 0.8]).tolist() == pytest.approx([1.0, 1.0, 1.0])  # F(0.26) = 0.1
    assert cap.factor([0.23])[0] == pytest.approx(0.5, abs=0.02)                      # F(0.23) = 0.05


def test_a_pool_without_coverage_caps_nothing_and_stores_nothing():
    cap = CoverageCap.from_arrays(None, {})
    assert not cap.active and cap.factor([-1.0, 0.3]).tolist() == [1.0, 1.0]
    assert cap.arrays() == {} and cap.to_metadata() is None


def test_the_cap_round_trips_through_its_arrays_and_metadata():
    cap = CoverageCap.fit(POOL_SIMS, level=0.05)
    again = CoverageCap.from_arrays(cap.to_metadata(), cap.arrays())
    q = np.linspace(0, 1, 50)
    assert np.array_equal(again.factor(q), cap.factor(q))


def test_bad_coverage_is_refused_with_the_rule():
    with pytest.raises(ConfigError, match="level must be in"):
        CoverageCap(level=0)
    with pytest.raises(ArtifactError, match="calibration_coverage"):
        CoverageCap.from_arrays({"level": 0.1}, {})
    with pytest.raises(ArtifactError, match="non-decreasing"):
        CoverageCap.from_arrays({"level": 0.1}, {"calibration_coverage": np.array([0.5, 0.2])})


def test_an_exported_router_gives_messages_unlike_the_pool_lower_confidence(small_npz, e5):
    from workbench.analysis.coverage import uncovered_probes
    from workbench.core.artifact import load_pool_npz
    from workbench.core.router import Router

    assert "calibration_coverage" in load_pool_npz(small_npz).arrays
    router = Router.load(small_npz, embedder=e5)
    covered = router.route_batch(["can you write a python function that reverses a linked list",
                                  "good morning, how are you today?", "what is the capital of Australia"])
    probes = router.route_batch(uncovered_probes(8))
    assert np.mean([d.confidence for d in probes]) < np.mean([d.confidence for d in covered])
