"""Shared fixtures, and the test tiers.

Tiers: a test is ``slow`` when it loads a real embedding model (any of the
model fixtures below), or is marked ``umap``, ``papermill``, ``browser`` or
``install``, ``ray`` (a local Ray instance) or ``serve`` (a real uvicorn server), or ``model`` when it
loads one another way (those markers imply ``slow``). ``make test-quick`` runs the
rest in well under a minute; ``make test`` (and CI) runs everything.
"""
import json

import pytest

from tests.helpers import ROOT

PER_CATEGORY = 20
#: Fixtures that load the real default embedding model.
MODEL_FIXTURES = {"e5", "small_pool", "small_npz", "bundled_pool", "bundled_npz", "use"}
SLOW_MARKERS = ("model", "umap", "papermill", "browser", "install", "ray", "serve")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(item.fixturenames) or any(item.get_closest_marker(m) for m in SLOW_MARKERS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def taxonomy():
    from workbench.core.taxonomy import load_taxonomy

    return load_taxonomy(ROOT / "data" / "taxonomy.yaml")


@pytest.fixture(scope="session")
def e5():
    from workbench.core.embed import get_embedder

    return get_embedder("e5-small", threads=2)


@pytest.fixture(scope="session")
def small_pool_file(tmp_path_factory):
    """The first 20 messages of each category of the bundled pool, as one JSONL file."""
    rows, counts = [], {}
    for f in sorted((ROOT / "data" / "pool").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                obj = json.loads(line)
                if counts.get(obj["category"], 0) < PER_CATEGORY:
                    counts[obj["category"]] = counts.get(obj["category"], 0) + 1
                    rows.append(line)
    path = tmp_path_factory.mktemp("pool") / "small.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("embcache")


@pytest.fixture(scope="session")
def small_pool(small_pool_file, taxonomy, e5, cache_dir):
    from workbench.dataset.embeddings import load_embedded_pool

    return load_embedded_pool(small_pool_file, taxonomy=taxonomy, backend=e5, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def small_npz(small_pool, tmp_path_factory):
    from workbench.core.knn import KNNConfig
    from workbench.decisions.export import export_pool

    path = tmp_path_factory.mktemp("npz") / "pool.npz"
    export_pool(small_pool, path, KNNConfig(k=5, vote="distance", center=True))
    return path


@pytest.fixture(scope="session")
def bundled_pool(taxonomy, e5, cache_dir):
    """The whole bundled pool (data/pool), embedded once per session."""
    from workbench.dataset.embeddings import load_embedded_pool

    return load_embedded_pool(None, taxonomy=taxonomy, backend=e5, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def bundled_npz(bundled_pool, tmp_path_factory):
    from workbench.core.knn import KNNConfig
    from workbench.decisions.export import export_pool

    path = tmp_path_factory.mktemp("npz") / "bundled.npz"
    export_pool(bundled_pool, path, KNNConfig(k=15, vote="distance", center=True))
    return path
