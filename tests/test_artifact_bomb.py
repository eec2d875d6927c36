"""Issue 21 class 4: the bomb guard does not trust the file it guards.

Every member's header is checked against the others and the metadata before any data is read, the rows are
bounded by the file's own size, and the digest is streamed. A file declaring 10 million rows is refused with a
peak memory under twice that of loading a real-sized pool (measured in fresh processes).
"""
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.helpers import ROOT, HashEmbedder, synthetic_pool
from workbench.core import artifact
from workbench.core.artifact import load_pool_npz, write_pool_npz
from workbench.core.artifact_schema import content_digest
from workbench.core.knn import KNNConfig
from workbench.errors import ArtifactError

PEAK = """
import resource, sys
from workbench.core.artifact import load_pool_npz
from workbench.errors import ArtifactError
try:
    load_pool_npz(sys.argv[1])
    outcome = "loaded"
except ArtifactError as e:
    outcome = str(e)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(outcome)
"""


def peak_kib(path):
    res = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=600, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    kib, outcome = res.stdout.strip().split("\n", 1)
    return int(kib), outcome


@pytest.fixture(scope="module")
def real_sized_pool(tmp_path_factory, taxonomy):
    """A pool the size of the bundled one (7,187 rows of 384 dimensions, int8), of realistic unit vectors."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7187, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = rng.integers(0, len(taxonomy.categories), 7187)
    path = tmp_path_factory.mktemp("real") / "pool.npz"
    write_pool_npz(path, x, labels, [f"m{i:06d}" for i in range(7187)], taxonomy=taxonomy,
                   embedder_spec=HashEmbedder(384).spec, config=KNNConfig(k=15))
    return path


def arrays_and_meta(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop("metadata")))


def save(path, arrays, meta):
    meta["sha256"] = content_digest(arrays, meta)  # a valid digest: nothing forged but the sizes
    np.savez_compressed(path, **arrays, metadata=np.array(json.dumps(meta)))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory, taxonomy):
    """A few hundred kB declaring 10 million rows (zeros compress ~1000x), with a digest that matches."""
    small = tmp_path_factory.mktemp("bomb") / "small.npz"
    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=8)
    write_pool_npz(small, x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(8).spec,
                   config=KNNConfig(k=3))
    arrays, meta = arrays_and_meta(small)
    n = 10_000_000
    arrays.update(embeddings=np.zeros((n, 8), np.int8), labels=np.zeros(n, np.int16), ids=np.full(n, "a"))
    meta.update(n=n, counts={c: (n if i == 0 else 0) for i, c in enumerate(meta["categories"])})
    path = save(small.parent / "bomb.npz", arrays, meta)
    del arrays
    return path


def test_a_bomb_declaring_ten_million_rows_is_refused_under_twice_the_memory_of_a_real_pool(bomb, real_sized_pool):
    assert bomb.stat().st_size < 2_000_000
    real_kib, outcome = peak_kib(real_sized_pool)
    assert outcome == "loaded"
    bomb_kib, outcome = peak_kib(bomb)
    assert "decompression bomb" in outcome and "\n" not in outcome
    print(f"peak RSS: real-sized pool {real_kib / 1024:.0f} MiB, bomb {bomb_kib / 1024:.0f} MiB "
          f"({bomb_kib / real_kib:.2f}x)")
    assert bomb_kib < 2 * real_kib


def test_the_bomb_is_refused_before_any_array_data_is_read(bomb, monkeypatch):
    read = []
    original = artifact._read_data
    monkeypatch.setattr(artifact, "_read_data", lambda zf, info, *a: read.append(info.filename) or original(zf, info, *a))
    with pytest.raises(ArtifactError, match="decompression bomb"):
        load_pool_npz(bomb)
    assert read == ["metadata.npy"]


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory, taxonomy):
    path = tmp_path_factory.mktemp("small") / "pool.npz"
    x, labels, ids = synthetic_pool(np.random.default_rng(1), taxonomy, per_class=4, dim=8)
    write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(8).spec,
                   config=KNNConfig(k=3))
    return path


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=st.sampled_from(["embeddings", "labels", "ids", "center", "embeddings_scale"]),
       rows=st.integers(0, 5000), meta_rows=st.booleans())
def test_a_member_whose_header_disagrees_is_refused_before_its_data_is_read(small_pool, tmp_path_factory, member,
                                                                           rows, meta_rows):
    """Any member resized (alone, or with the metadata's n to match) is refused from the headers alone."""
    arrays, meta = arrays_and_meta(small_pool)
    a = arrays[member]
    shape = (rows,) + a.shape[1:] if member in ("embeddings", "labels", "ids") else (rows,)
    if shape == a.shape:
        return
    arrays[member] = np.resize(a, shape)
    if meta_rows and member in ("embeddings", "labels", "ids"):
        meta["n"] = rows
    path = save(tmp_path_factory.mktemp("lie") / "lie.npz", arrays, meta)
    read = []
    original = artifact._read_data
    artifact._read_data = lambda zf, info, *a: read.append(info.filename) or original(zf, info, *a)
    try:
        with pytest.raises(ArtifactError):
            load_pool_npz(path)
    finally:
        artifact._read_data = original
    assert read in ([], ["metadata.npy"])


def test_a_zip_entry_whose_size_disagrees_with_its_header_is_refused(small_pool, tmp_path):
    raw = bytearray(small_pool.read_bytes())
    with zipfile.ZipFile(small_pool) as zf:
        info = zf.getinfo("labels.npy")
    central = raw.rfind(b"labels.npy") - 46  # the central directory entry of labels.npy
    size = int.from_bytes(raw[central + 24:central + 28], "little")
    assert size == info.file_size
    raw[central + 24:central + 28] = (size * 1000).to_bytes(4, "little")
    (tmp_path / "lie.npz").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="labels"):
        load_pool_npz(tmp_path / "lie.npz")
