"""Issue 21 class 5: every value a pool carries is checked, not only its shape and hash.

Hypothesis puts hostile values (NaN, infinities, subnormal and huge numbers, strings, booleans, knots outside
[0, 1]) into every value-bearing place of a pool.npz whose digest is recomputed, so only the value check can
refuse it; and a pool is routed on a fixed probe before the service swaps it in.
"""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.helpers import HashEmbedder, synthetic_pool
from workbench.core.artifact import load_pool_npz, write_pool_npz
from workbench.core.artifact_schema import content_digest
from workbench.core.knn import KNNConfig
from workbench.errors import ArtifactError, WorkbenchError

FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
HOSTILE = [float("nan"), float("inf"), -float("inf"), 1e-320, 1e300, -1e300, "0.5", True, False, None, [0.5], {}]


@pytest.fixture(scope="module")
def pool(tmp_path_factory, taxonomy):
    path = tmp_path_factory.mktemp("values") / "pool.npz"
    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=4, dim=8)
    n_cat = len(taxonomy.categories)
    heads = {"head_coef": np.zeros((n_cat, 8), np.float32), "head_intercept": np.zeros(n_cat, np.float32),
             "head_blend_weight": np.array([0.5], np.float32),
             "calibration_x": np.array([0.0, 0.5, 1.0]), "calibration_y": np.array([0.1, 0.5, 0.9])}
    write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(8).spec,
                   config=KNNConfig(k=3), extra_arrays=heads,
                   extra_metadata={"head": "blend", "calibration": "isotonic",
                                   "policy": {"name": "vote", "threshold": 0.5}})
    load_pool_npz(path)
    return path


def rewrite(src, dst, *, arrays_update=None, meta_update=None):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("metadata")))
    arrays.update(arrays_update or {})
    for key, value in (meta_update or {}).items():
        target = meta
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value
    try:
        meta["sha256"] = content_digest(arrays, meta)
    except ValueError:  # NaN in the metadata: not JSON, so no digest either (the strict parser refuses it)
        meta["sha256"] = "0" * 64
    np.savez_compressed(dst, **arrays, metadata=np.array(json.dumps(meta, allow_nan=True)))
    return dst


@FUZZ
@given(name=st.sampled_from(["head_coef", "head_intercept", "head_blend_weight", "calibration_x", "calibration_y"]),
       value=st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30, 2.0, -0.5]), where=st.integers(0, 100))
def test_a_head_or_calibration_array_with_a_bad_value_is_refused(pool, tmp_path_factory, name, value, where):
    with np.load(pool) as z:
        a = z[name].copy()
    if name == "calibration_x" and value in (2.0, -0.5):
        value = 1.5  # knots outside [0, 1], still increasing at the end
        where = a.size - 1
    if name in ("head_coef", "head_intercept") and value in (2.0, -0.5):
        return  # ordinary weights
    a.reshape(-1)[where % a.size] = value
    path = rewrite(pool, tmp_path_factory.mktemp("v") / "bad.npz", arrays_update={name: a})
    with pytest.raises(ArtifactError, match=name):
        load_pool_npz(path)


@FUZZ
@given(key=st.sampled_from(["temperature", "policy.threshold", "k", "center", "calibration"]),
       value=st.sampled_from(HOSTILE))
def test_a_metadata_value_of_the_wrong_type_or_range_is_refused(pool, tmp_path_factory, key, value):
    ok = {"temperature": lambda v: isinstance(v, float) and 1e-4 <= v <= 1e4,
          "policy.threshold": lambda v: v is None or (isinstance(v, float) and 0 <= v <= 1),
          "k": lambda v: False, "center": lambda v: isinstance(v, bool),
          "calibration": lambda v: v is None}[key]
    if ok(value):
        return
    path = rewrite(pool, tmp_path_factory.mktemp("m") / "bad.npz", meta_update={key: value})
    with pytest.raises(ArtifactError):
        load_pool_npz(path)


def test_a_pool_that_routes_a_probe_to_nan_is_refused_before_it_serves():
    from workbench.serve.pools import check_probe

    class Decision:
        confidence, tier = float("nan"), "cheap"

    class Router:
        tiers = ["cheap"]

        def route_batch(self, texts):
            return [Decision() for _ in texts]

    class Raising(Router):
        def route_batch(self, texts):
            raise FloatingPointError("overflow")

    for router in (Router(), Raising()):
        with pytest.raises(WorkbenchError, match="probe"):
            check_probe(router, "pool.npz")


# -- class 12: a forged ann_index or ann metadata is one line, never a traceback ---------------------------------


@pytest.mark.parametrize("forgery", ["random bytes", "a flat index", "metadata not an object", "no ef_search"])
def test_a_forged_ann_index_is_an_artifact_error(pool, tmp_path, forgery):
    import faiss

    from tests.helpers import HashEmbedder
    from workbench.core.ann import _sha256
    from workbench.core.router import Router

    with np.load(pool) as z:
        rows = len(z["labels"])
    if forgery == "a flat index":
        flat = faiss.IndexFlatIP(8)
        flat.add(np.eye(8, dtype=np.float32)[np.arange(rows) % 8])
        member = faiss.serialize_index(flat)
    else:
        member = np.random.default_rng(0).integers(0, 256, 4000).astype(np.uint8)
    ann = {"sha256": _sha256(member), "rows": rows, "ef_search": 64, "m": 16}
    if forgery == "metadata not an object":
        ann = [ann]
    elif forgery == "no ef_search":
        del ann["ef_search"]
    path = rewrite(pool, tmp_path / "forged.npz", arrays_update={"ann_index": member}, meta_update={"ann": ann})
    with pytest.raises(ArtifactError) as e:
        Router.load(path, embedder=HashEmbedder(8))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["head_blend_weight", "calibration_x", "calibration_y"])
def test_an_empty_blend_or_calibration_array_is_an_artifact_error(pool, tmp_path, name):
    path = rewrite(pool, tmp_path / "empty.npz", arrays_update={name: np.zeros(0, np.float32)})
    with pytest.raises(ArtifactError, match=name):
        load_pool_npz(path)
