"""The traffic on the pool's map: the pool's own UMAP fit, logged messages placed by its transform (slow: UMAP)."""
import numpy as np
import pytest

from workbench.analysis.projection import project_2d
from workbench.analysis.uncovered import traffic_map_coords

pytestmark = pytest.mark.umap


def test_traffic_lands_on_the_pool_map_without_a_refit():
    rng = np.random.default_rng(0)
    centres = np.eye(16, dtype=np.float32)[:3]
    pool = np.vstack([c + 0.05 * rng.standard_normal((40, 16)) for c in centres]).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    traffic = pool[[0, 45, 90]] + 0.001 * rng.standard_normal((3, 16)).astype(np.float32)
    traffic /= np.linalg.norm(traffic, axis=1, keepdims=True)
    pool_xy, traffic_xy = traffic_map_coords(pool, traffic, random_state=0)
    np.testing.assert_allclose(pool_xy, project_2d(pool, random_state=0), atol=1e-4)  # the pool map, unchanged
    for t, row in zip(traffic_xy, (0, 45, 90)):  # each copy lands in its own island of the pool map
        island = pool_xy[row // 40 * 40:(row // 40 + 1) * 40]
        nearest = np.linalg.norm(pool_xy - t, axis=1).argmin()
        assert nearest // 40 == row // 40 and np.linalg.norm(t - island.mean(axis=0)) < 5
