import json

import numpy as np
import pytest

from workbench.errors import ArtifactError
from workbench.core.artifact import load_pool_npz


def test_pool_npz_loads_without_pickle_and_carries_metadata(small_npz, small_pool):
    with np.load(small_npz, allow_pickle=False) as z:
        assert {"embeddings", "labels", "ids", "center", "metadata"} <= set(z.files)
        meta = json.loads(str(z["metadata"]))
        assert z["embeddings"].dtype == np.int8 and z["embeddings_scale"].shape == (384,)
        assert z["embeddings"].shape == (len(small_pool.frame), 384)
    assert meta["backend"] == "e5-small" and meta["dim"] == 384 and meta["prefix"] == "query: "
    assert meta["k"] == 5 and meta["vote"] == "distance" and meta["center"] is True
    assert meta["tier_map"]["coding"] == "strong" and meta["tiers"] == ["cheap", "medium", "strong"]
    assert sum(meta["counts"].values()) == len(small_pool.frame)
    art = load_pool_npz(small_npz)
    assert list(art.ids[:3]) == list(small_pool.frame["id"][:3])


def _rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    np.savez(dst, **arrays)
    return dst


def test_a_corrupted_embedding_is_caught_by_the_hash(small_npz, tmp_path):
    with np.load(small_npz) as z:
        emb = z["embeddings"].copy()
    emb[0, 0] += 1
    bad = _rewrite(small_npz, tmp_path / "bad.npz", embeddings=emb)
    with pytest.raises(ArtifactError, match="hash mismatch"):
        load_pool_npz(bad)


def test_nan_and_constant_rows_are_refused(small_npz, tmp_path):
    from workbench.core.artifact import content_digest

    from workbench.core.artifact import dequantize

    with np.load(small_npz) as z:
        arrays, meta = {k: z[k] for k in z.files}, json.loads(str(z["metadata"]))
    # the same vectors stored as float32, where a NaN can be written
    arrays["embeddings"] = dequantize(arrays["embeddings"], arrays.pop("embeddings_scale"))
    meta["dtype"] = "float32"
    for value, message in ((np.nan, "NaN"), (0.0, "constant")):
        e = arrays["embeddings"].copy()
        e[1] = value
        meta["sha256"] = content_digest(dict(arrays, embeddings=e), meta)  # a consistent hash: the checks still hold
        bad = tmp_path / "bad.npz"
        np.savez(bad, **dict(arrays, embeddings=e, metadata=np.array(json.dumps(meta))))
        with pytest.raises(ArtifactError, match=message):
            load_pool_npz(bad)


def test_wrong_schema_version_and_missing_file(small_npz, tmp_path):
    with np.load(small_npz) as z:
        meta = json.loads(str(z["metadata"]))
    meta["schema_version"] = 99
    bad = _rewrite(small_npz, tmp_path / "v.npz", metadata=np.array(json.dumps(meta)))
    with pytest.raises(ArtifactError, match="schema version 99"):
        load_pool_npz(bad)
    with pytest.raises(ArtifactError, match="no such file"):
        load_pool_npz(tmp_path / "missing.npz")


def test_pickled_arrays_are_refused(small_npz, tmp_path):
    bad = _rewrite(small_npz, tmp_path / "p.npz", ids=np.array([object()] * 3, dtype=object))
    with pytest.raises(ArtifactError):
        load_pool_npz(bad)


def test_export_is_atomic_and_leaves_no_temp_files(small_pool, tmp_path):
    from workbench.core.knn import KNNConfig
    from workbench.decisions.export import export_pool

    out = tmp_path / "pool.npz"
    out.write_bytes(b"old")
    export_pool(small_pool, out, KNNConfig(k=3))
    assert [p.name for p in tmp_path.iterdir()] == ["pool.npz"]
    assert load_pool_npz(out).metadata["k"] == 3
