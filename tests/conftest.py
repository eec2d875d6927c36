"""Shared fixtures: the real default embedding model on small slices of the bundled data."""
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PER_CATEGORY = 20


@pytest.fixture(scope="session")
def taxonomy():
    from workbench.taxonomy import load_taxonomy

    return load_taxonomy(ROOT / "data" / "taxonomy.yaml")


@pytest.fixture(scope="session")
def e5():
    from workbench.embed import get_embedder

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
    from workbench.pipeline import load_embedded_pool

    return load_embedded_pool(small_pool_file, taxonomy=taxonomy, backend=e5, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def small_npz(small_pool, tmp_path_factory):
    from workbench.evaluate import KNNConfig
    from workbench.pipeline import export_pool

    path = tmp_path_factory.mktemp("npz") / "pool.npz"
    export_pool(small_pool, path, KNNConfig(k=5, vote="distance", center=True))
    return path


@pytest.fixture(scope="session")
def bundled_pool(taxonomy, e5, cache_dir):
    """The whole bundled pool (data/pool), embedded once per session."""
    from workbench.pipeline import load_embedded_pool

    return load_embedded_pool(None, taxonomy=taxonomy, backend=e5, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def bundled_npz(bundled_pool, tmp_path_factory):
    from workbench.evaluate import KNNConfig
    from workbench.pipeline import export_pool

    path = tmp_path_factory.mktemp("npz") / "bundled.npz"
    export_pool(bundled_pool, path, KNNConfig(k=15, vote="distance", center=True))
    return path


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def unit_rows(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
