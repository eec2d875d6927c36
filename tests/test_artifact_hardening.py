"""pool.npz against tampering, bombs and natural mistakes (issue 11, classes 2, 3, 4 and 18).

Every case builds a real artifact with ``write_pool_npz`` (synthetic vectors, no model) and edits it the way a
careless or hostile user would, with numpy and zipfile, then checks the loader's answer: one line, naming the file.
"""
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import HashEmbedder, synthetic_pool
from workbench.core.artifact import dequantize, load_pool_npz, quantize, write_pool_npz
from workbench.core.knn import KNNConfig
from workbench.core.policy import DecisionPolicy
from workbench.core.router import Router
from workbench.errors import ArtifactError, ConfigError

DIM = 16


@pytest.fixture
def npz(tmp_path, taxonomy):
    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=6, dim=DIM)
    rng = np.random.default_rng(1)
    head = {"head_coef": rng.normal(size=(7, DIM)).astype(np.float32),
            "head_intercept": np.zeros(7, np.float32)}
    policy = DecisionPolicy("cost", taxonomy.cost_matrix().tolist(), "tier_confidence", 0.3)
    path = tmp_path / "pool.npz"
    write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(DIM).spec,
                   config=KNNConfig(k=5), extra_arrays=head, extra_metadata={"policy": policy.to_metadata(),
                                                                            "head": "logreg"})
    return path


def arrays_of(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save(path, arrays, meta=None, *, rehash=False):
    """Write ``arrays`` (with ``meta`` as the metadata) as an npz, optionally with a recomputed, consistent hash."""
    from workbench.core.artifact import content_digest

    arrays = dict(arrays)
    if meta is not None:
        if rehash:
            meta = dict(meta, sha256=content_digest({k: v for k, v in arrays.items() if k != "metadata"}, meta))
        arrays["metadata"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


def one_line(e):
    return "\n" not in str(e.value) and "Traceback" not in str(e.value)


# -- class 2: the hash covers every array and the metadata ---------------------------------------------------


@pytest.mark.parametrize("edit", ["tier_map", "k", "vote", "policy", "head"])
def test_an_edited_metadata_field_is_refused(npz, tmp_path, edit):
    arrays = arrays_of(npz)
    meta = json.loads(str(arrays["metadata"]))
    changed = {"tier_map": dict(meta["tier_map"], coding="cheap"), "k": 3, "vote": "majority",
               "policy": dict(meta["policy"], threshold=0.0), "head": "knn"}
    meta[edit] = changed[edit]
    with pytest.raises(ArtifactError, match="hash mismatch") as e:
        load_pool_npz(save(tmp_path / "edited.npz", arrays, meta))
    assert one_line(e) and "edited.npz" in str(e.value)


@pytest.mark.parametrize("name", ["labels", "center", "head_coef", "head_intercept", "ids", "embeddings",
                                  "embeddings_scale"])
def test_an_edited_array_is_refused(npz, tmp_path, name):
    arrays = arrays_of(npz)
    a = arrays[name].copy()
    if a.dtype.kind == "U":
        a[0] = "someone-else"
    elif a.dtype.kind == "f":
        a[0] += 0.5
    else:
        a[0] = (a[0] + 1) % 7
    arrays[name] = a
    with pytest.raises(ArtifactError, match="hash mismatch"):
        load_pool_npz(save(tmp_path / "edited.npz", arrays))


def test_a_routing_change_by_editing_the_tier_map_is_caught(npz, tmp_path):
    """The case from the review: coding routed cheap after an edit of the metadata only."""
    arrays = arrays_of(npz)
    meta = json.loads(str(arrays["metadata"]))
    meta["tier_map"]["coding"] = "cheap"
    with pytest.raises(ArtifactError):
        Router.load(save(tmp_path / "cheap.npz", arrays, meta), embedder=HashEmbedder(DIM))


BAD_METADATA = [
    ("k", 0, "k must be an integer >= 1"),
    ("k", 10_000, "k must be at most n"),
    ("k", "5", "k must be an integer"),
    ("temperature", -1, "temperature must be a number between"),
    ("temperature", None, "temperature"),
    ("vote", ["majority"], "vote must be one of"),
    ("center", "yes", "center must be true or false"),
    ("dim", 10**9, "dim must be an integer between"),
    ("n", -3, "n must be an integer between"),
    ("categories", {"a": 1}, "categories must be a list"),
    ("categories", ["coding", "coding"], "duplicates"),
    ("tier_map", {"coding": "strong"}, "tier_map must map exactly the categories"),
    ("tiers", ["cheap", "medium"], "unknown tiers"),
    ("cost", [[0, 1], [1, 0]], "cost must be a 3x3 matrix"),
    ("cost", [["a", 1, 2], [1, 0, 1], [1, 1, 0]], "cost must be a 3x3 matrix"),
    ("counts", {"coding": 42}, "counts must give a count"),
    ("policy", "cost", "policy must be an object"),
    ("policy", {"name": "cheapest"}, "metadata policy: policy must be one of"),
    ("policy", {"name": "vote", "threshold": 7}, "threshold must be a number in"),
    ("head", ["knn"], "head must be one of"),
    ("head", "transformer", "head must be one of"),
    ("backend", 5, "backend must be a non-empty string"),
    ("sha256", "abc", "sha256 must be 64 lowercase hex"),
    ("dtype", "float64", "dtype must be one of int8, float16, float32"),
]


@pytest.mark.parametrize("key, value, message", BAD_METADATA)
def test_metadata_of_the_wrong_type_or_range_is_a_one_line_error_even_with_a_valid_hash(npz, tmp_path, key, value,
                                                                                        message):
    arrays = arrays_of(npz)
    meta = dict(json.loads(str(arrays["metadata"])), **{key: value})
    rehash = key != "sha256"
    with pytest.raises(ArtifactError, match=message) as e:
        load_pool_npz(save(tmp_path / "m.npz", arrays, meta, rehash=rehash))
    assert one_line(e) and "m.npz" in str(e.value)


def test_counts_must_match_the_labels(npz, tmp_path):
    arrays = arrays_of(npz)
    meta = json.loads(str(arrays["metadata"]))
    meta["counts"] = dict(meta["counts"], coding=meta["counts"]["coding"] + 1, casual=meta["counts"]["casual"] - 1)
    with pytest.raises(ArtifactError, match="counts do not match the labels"):
        load_pool_npz(save(tmp_path / "c.npz", arrays, meta, rehash=True))


def test_a_schema_1_file_says_to_export_again(npz, tmp_path):
    arrays = arrays_of(npz)
    meta = dict(json.loads(str(arrays["metadata"])), schema_version=1)
    with pytest.raises(ArtifactError, match=r"schema version 1: .*Export the pool again"):
        load_pool_npz(save(tmp_path / "old.npz", arrays, meta))


def test_a_pinned_digest_accepts_the_file_hash_or_the_content_digest_and_nothing_else(npz):
    file_hash = hashlib.sha256(npz.read_bytes()).hexdigest()
    art = load_pool_npz(npz, sha256=file_hash)
    assert load_pool_npz(npz, sha256=art.digest.upper()).digest == art.digest
    router = Router.load(npz, embedder=HashEmbedder(DIM), sha256=art.digest)
    assert router.artifact.digest == art.digest
    with pytest.raises(ArtifactError, match="not the expected"):
        Router.load(npz, embedder=HashEmbedder(DIM), sha256="0" * 64)


def test_the_digest_does_not_depend_on_how_the_file_was_zipped(npz, tmp_path):
    arrays = arrays_of(npz)
    np.savez_compressed(tmp_path / "z.npz", **arrays)
    assert load_pool_npz(tmp_path / "z.npz").digest == load_pool_npz(npz).digest


# -- class 3: decompression bombs and unknown members ---------------------------------------------------------


def _npy_bytes(header_shape, dtype="<f4", data=b""):
    """A .npy member whose header declares ``header_shape`` but which holds only ``data``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": header_shape})
    return buf.getvalue() + data


def _add_member(src, dst, name, payload, compress=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compress) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
        zout.writestr(name, payload)
    return dst


def test_an_unknown_member_is_refused_without_being_read(npz, tmp_path):
    # 64 MiB of zeros deflate to about 64 KiB: the member would cost 64 MiB in memory if read
    bad = _add_member(npz, tmp_path / "bomb.npz", "junk.npy", _npy_bytes((16 * 2**20,), data=bytes(64 * 2**20)))
    assert bad.stat().st_size < 2 * 2**20
    with pytest.raises(ArtifactError, match="unexpected member 'junk.npy'") as e:
        load_pool_npz(bad)
    assert one_line(e)


def test_a_known_family_member_larger_than_the_pool_needs_is_refused_before_reading(npz, tmp_path):
    bad = _add_member(npz, tmp_path / "bomb.npz", "head_extra.npy", _npy_bytes((4096, 4096), data=bytes(64 * 2**20)))
    with pytest.raises(ArtifactError, match=r"array 'head_extra' declares \d+ bytes, more than"):
        load_pool_npz(bad)


def test_a_header_that_promises_more_than_the_data_is_refused_by_its_shape(npz, tmp_path):
    arrays = arrays_of(npz)
    with zipfile.ZipFile(npz) as zin, zipfile.ZipFile(tmp_path / "h.npz", "w") as zout:
        for info in zin.infolist():
            if info.filename == "embeddings.npy":
                zout.writestr(info.filename, _npy_bytes((10**7, DIM), "<f2", b"\0" * 64))
            else:
                zout.writestr(info.filename, zin.read(info))
    with pytest.raises(ArtifactError, match="embeddings") as e:
        load_pool_npz(tmp_path / "h.npz")
    assert one_line(e) and arrays["embeddings"].shape[0] < 100


@pytest.mark.parametrize("name", ["ann_index", "calibration_temperature", "head_bias"])
def test_the_declared_member_families_are_allowed(npz, tmp_path, name):
    arrays = arrays_of(npz)
    arrays[name] = (np.zeros if name == "ann_index" else np.ones)(8, np.uint8 if name == "ann_index" else np.float32)
    meta = json.loads(str(arrays.pop("metadata")))
    from workbench.core.artifact import MEMBERS

    path = save(tmp_path / "f.npz", arrays, meta, rehash=True)
    if name == "ann_index":  # a known member, but an index must come with the metadata that describes it
        with pytest.raises(ArtifactError, match="an index without ann metadata"):
            load_pool_npz(path)
    else:
        load_pool_npz(path)
    assert {"head_*", "calibration_*", "ann_index"} <= set(MEMBERS)


def test_write_refuses_an_array_name_the_loader_would_refuse(npz, tmp_path, taxonomy):
    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=DIM)
    with pytest.raises(ArtifactError, match="not one pool.npz may hold"):
        write_pool_npz(tmp_path / "x.npz", x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(DIM).spec,
                       config=KNNConfig(k=3), extra_arrays={"notes": np.zeros(3)})
    assert not (tmp_path / "x.npz").exists()


# -- class 18: natural mistakes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    (b'{"id": "a", "text": "hi", "category": "casual"}\n', "looks like a JSON/JSONL file"),
    (b"\xef\xbb\xbf[1, 2]", "looks like a JSON/JSONL file"),
    (b"", "is empty"),
    (b"id,text\n1,hello\n", "not a zip archive"),
])
def test_a_file_that_is_not_a_pool_says_what_it_is_and_never_suggests_pickle(tmp_path, content, message):
    path = tmp_path / "pool.jsonl"
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match=message) as e:
        load_pool_npz(path)
    assert "pickle" not in str(e.value) and one_line(e)


def test_a_single_npy_array_is_named_as_such(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(3))
    with pytest.raises(ArtifactError, match="single .npy array"):
        load_pool_npz(tmp_path / "v.npy")


def test_k_above_the_pool_size_is_refused_on_write(tmp_path, taxonomy):
    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=2, dim=DIM)
    with pytest.raises(ArtifactError, match="k must be at most n = 14"):
        write_pool_npz(tmp_path / "k.npz", x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(DIM).spec,
                       config=KNNConfig(k=5000))


def test_choose_config_bounds_k_by_the_pool_size(taxonomy):
    from types import SimpleNamespace

    from workbench.analysis.evaluate import choose_config

    x, labels, _ = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=DIM)
    pool = SimpleNamespace(vectors=x, labels=labels, taxonomy=taxonomy)
    with pytest.raises(ConfigError, match=r"k must be at most 20 for a pool of 21 messages .*; got 5000"):
        choose_config(pool, k=5000, vote="distance", center=True)


# -- class 4: a pool does not choose which model code a router loads ----------------------------------------------


def test_a_pool_naming_a_backend_outside_the_allow_list_is_refused(tmp_path, taxonomy):
    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=DIM)
    spec = {"backend": "st:someone/remote-model", "model_id": "someone/remote-model", "dim": DIM, "prefix": ""}
    path = tmp_path / "st.npz"
    write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, embedder_spec=spec, config=KNNConfig(k=3))
    with pytest.raises(ConfigError, match="names backend 'st:someone/remote-model', which is not allowed"):
        Router.load(path)
    with pytest.raises(ConfigError, match="not allowed"):
        Router.load(path, allowed_backends=["st:intfloat/*"])


# -- int8 storage: the scale goes with the int8 vectors, and the vectors come back as cosines ------------------


@pytest.mark.parametrize("case, message", [
    ("int8 without its scale", "embeddings_scale goes with int8 embeddings"),
    ("float16 with a scale", "embeddings_scale goes with int8 embeddings"),
    ("a negative scale", "embeddings_scale must hold 16 finite positive numbers"),
    ("a scale of the wrong length", r"embeddings_scale.*(must hold 16 finite positive numbers|expected \(16,\))"),
])
def test_int8_vectors_and_their_scale_must_come_together_even_with_a_valid_hash(npz, tmp_path, case, message):
    arrays = arrays_of(npz)
    meta = json.loads(str(arrays["metadata"]))
    assert meta["dtype"] == "int8" and arrays["embeddings"].dtype == np.int8
    if case == "int8 without its scale":
        del arrays["embeddings_scale"]
    elif case == "float16 with a scale":
        arrays["embeddings"] = arrays["embeddings"].astype(np.float16) / 127
        meta["dtype"] = "float16"
    elif case == "a negative scale":
        arrays["embeddings_scale"] = -arrays["embeddings_scale"]
    else:
        arrays["embeddings_scale"] = arrays["embeddings_scale"][:-1]
    with pytest.raises(ArtifactError, match=message) as e:
        load_pool_npz(save(tmp_path / "scaled.npz", arrays, meta, rehash=True))
    assert one_line(e)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 60), dim=st.sampled_from([2, 16, 384, 896]))
def test_int8_storage_keeps_every_cosine_within_a_hundredth(seed, n, dim):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32) * rng.uniform(0.01, 3, size=dim).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q, scale = quantize(x)
    assert q.dtype == np.int8 and scale.shape == (dim,) and (scale > 0).all()
    y = dequantize(q, scale)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)
    assert np.abs(y @ y.T - x @ x.T).max() < 0.01


def test_an_int8_pool_routes_as_its_float32_twin(tmp_path, taxonomy):
    x, labels, ids = synthetic_pool(np.random.default_rng(3), taxonomy, per_class=20, dim=64)
    routers = {}
    for dtype in ("int8", "float32"):
        path = write_pool_npz(tmp_path / f"{dtype}.npz", x, labels, ids, taxonomy=taxonomy, dtype=dtype,
                              embedder_spec=HashEmbedder(64).spec, config=KNNConfig(k=5)) and tmp_path / f"{dtype}.npz"
        routers[dtype] = Router.load(path, embedder=HashEmbedder(64))
    q = x[::3] + 0.05 * np.random.default_rng(4).normal(size=x[::3].shape).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a, b = (routers[d].route_vectors(q) for d in ("int8", "float32"))
    assert [d.category for d in a] == [d.category for d in b]
    assert (tmp_path / "int8.npz").stat().st_size < (tmp_path / "float32.npz").stat().st_size / 2
