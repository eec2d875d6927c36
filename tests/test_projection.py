import numpy as np
import pytest

from tests.helpers import unit_rows
from workbench.errors import ConfigError
from workbench.analysis.projection import project_2d, projection_key


def test_key_depends_on_vectors_and_parameters():
    x = unit_rows(np.random.default_rng(0), 10, 4)
    assert projection_key(x, random_state=1) == projection_key(x.copy(), random_state=1)
    assert projection_key(x, random_state=1) != projection_key(x, random_state=2)
    assert projection_key(x, random_state=1) != projection_key(x[::-1], random_state=1)


def test_rejects_a_one_dimensional_input():
    with pytest.raises(ConfigError, match="2-D"):
        project_2d(np.zeros(5))


def test_tiny_inputs_get_a_trivial_layout_without_umap():
    assert project_2d(unit_rows(np.random.default_rng(0), 3, 4)).shape == (3, 2)


@pytest.mark.umap
def test_same_seed_same_map_and_the_cache_is_reused(tmp_path, monkeypatch):
    x = unit_rows(np.random.default_rng(1), 60, 8)
    a = project_2d(x, n_neighbors=10, random_state=7, cache_dir=tmp_path)
    b = project_2d(x, n_neighbors=10, random_state=7)
    assert a.shape == (60, 2) and np.array_equal(a, b)
    assert len(list(tmp_path.glob("umap-*.npy"))) == 1
    import sys

    monkeypatch.setitem(sys.modules, "umap", None)  # a cache hit must not need umap at all
    assert np.array_equal(project_2d(x, n_neighbors=10, random_state=7, cache_dir=tmp_path), a)
