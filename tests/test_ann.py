"""The HNSW index of big pools: search quality, save/load/verify inside pool.npz, the router's use, exact fallback."""
import json
import logging

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tests.helpers import HashEmbedder, synthetic_pool, unit_rows
from workbench.analysis.evaluate import ann_recall, loo_neighbors
from workbench.core import ann as ann_mod
from workbench.core.ann import ANN_MEMBER, HNSWIndex, search_excluding_self
from workbench.core.artifact import MEMBERS, content_digest, load_pool_npz, write_pool_npz
from workbench.core.knn import KNNConfig, top_k
from workbench.core.router import Router
from workbench.dataset.duplicates import first_of_near_duplicates, max_similarity
from workbench.errors import ArtifactError, MissingDependencyError


def clustered(rng, n, d=32, clusters=40, spread=0.5):
    centers = unit_rows(rng, clusters, d)
    x = centers[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, d)).astype(np.float32) / np.sqrt(d)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall(a, b):
    return np.mean([len(set(r) & set(s)) / len(s) for r, s in zip(a, b)])


def test_hnsw_finds_the_exact_neighbours_and_survives_serialisation():
    rng = np.random.default_rng(0)
    x, q = clustered(rng, 3000), clustered(rng, 200)
    index = HNSWIndex.build(x)
    idx, sim = index.search(q, 10)
    exact, _ = top_k(q, x, 10)
    assert recall(idx, exact) >= 0.95
    np.testing.assert_allclose(sim, np.einsum("qd,qkd->qk", q, x[idx]), atol=1e-5)  # cosine of what it returns
    assert (np.diff(sim, axis=1) <= 1e-6).all()  # most similar first
    again = HNSWIndex.from_array(index.to_array())
    np.testing.assert_array_equal(again.search(q, 10)[0], idx)
    assert index.to_array().dtype == np.uint8


def test_leave_one_out_through_the_index_never_returns_the_row_or_its_group():
    rng = np.random.default_rng(1)
    x = clustered(rng, 600)
    groups = np.arange(600) // 3
    idx, _ = search_excluding_self(HNSWIndex.build(x), x, 7)
    assert not (idx == np.arange(600)[:, None]).any()
    gidx, _ = search_excluding_self(HNSWIndex.build(x), x, 7, groups=groups)
    assert not (groups[gidx] == groups[:, None]).any()
    ann_idx, _ = loo_neighbors(x, 7, ann=True)
    assert ann_recall(x, ann_idx, 7, sample=200) >= 0.95
    exact_idx, _ = loo_neighbors(x, 7, ann=False)
    assert recall(ann_idx, exact_idx) >= 0.95


def write_pool(path, taxonomy, *, ann, n_per_class=30, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    x, labels, ids = synthetic_pool(rng, taxonomy, per_class=n_per_class, dim=dim)
    spec = dict(HashEmbedder(dim).spec)
    write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, embedder_spec=spec, config=KNNConfig(k=5),
                   dtype="float32", ann=ann)
    return path


def test_the_index_is_stored_in_pool_npz_and_routes_like_exact_search(tmp_path, taxonomy):
    assert ANN_MEMBER in MEMBERS
    with_index = Router(load_pool_npz(write_pool(tmp_path / "a.npz", taxonomy, ann=True)), HashEmbedder(16))
    exact = Router(load_pool_npz(write_pool(tmp_path / "e.npz", taxonomy, ann=False)), HashEmbedder(16))
    assert with_index.index is not None and exact.index is None
    meta = with_index.metadata["ann"]
    assert meta["kind"] == "hnsw" and meta["rows"] == len(with_index.artifact.labels) and meta["m"] >= 2
    q = clustered(np.random.default_rng(5), 100, d=16)
    a, b = with_index.route_vectors(q), exact.route_vectors(q)
    assert [d.tier for d in a] == [d.tier for d in b]
    assert [d.neighbors for d in a] == [d.neighbors for d in b]


def rewrite(path, *, resign=True, **change):
    """Change members of a pool.npz; ``resign`` recomputes the content digest (as a careful forger would)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(change)
    if resign:
        meta = json.loads(str(arrays.pop("metadata")))
        meta["sha256"] = content_digest(arrays, meta)
        arrays["metadata"] = np.array(json.dumps(meta))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_a_tampered_or_missing_index_is_refused(tmp_path, taxonomy):
    path = write_pool(tmp_path / "p.npz", taxonomy, ann=True)
    with np.load(path, allow_pickle=False) as z:
        member, meta = z[ANN_MEMBER].copy(), json.loads(str(z["metadata"]))
    member[len(member) // 2] ^= 0xFF
    rewrite(path, resign=False, **{ANN_MEMBER: member})
    with pytest.raises(ArtifactError, match="hash mismatch"):  # the content digest covers the index
        load_pool_npz(path)
    rewrite(path, **{ANN_MEMBER: member})  # digest recomputed: the index's own hash still disagrees
    with pytest.raises(ArtifactError, match="ANN index hash or row count mismatch"):
        load_pool_npz(path)
    path2 = write_pool(tmp_path / "q.npz", taxonomy, ann=False)
    rewrite(path2, metadata=np.array(json.dumps(meta)))
    with pytest.raises(ArtifactError, match="ann metadata without an index"):
        load_pool_npz(path2)


def test_without_faiss_a_pool_with_an_index_is_searched_exactly(tmp_path, taxonomy, monkeypatch, caplog):
    path = write_pool(tmp_path / "p.npz", taxonomy, ann=True)
    exact = Router(load_pool_npz(write_pool(tmp_path / "e.npz", taxonomy, ann=False)), HashEmbedder(16))

    def missing():
        raise MissingDependencyError("the ANN index of a big pool needs the package 'faiss-cpu'")

    monkeypatch.setattr(ann_mod, "_faiss", missing)
    with caplog.at_level(logging.WARNING):
        router = Router(load_pool_npz(path), HashEmbedder(16))
    assert router.index is None and "searching exactly" in caplog.text
    q = clustered(np.random.default_rng(6), 20, d=16)
    assert [d.tier for d in router.route_vectors(q)] == [d.tier for d in exact.route_vectors(q)]


def test_export_stores_an_index_only_from_the_threshold(tmp_path, taxonomy, monkeypatch):
    from workbench import config
    from workbench.dataset.embeddings import EmbeddedPool
    from workbench.decisions.export import export_pool

    rng = np.random.default_rng(2)
    x, labels, ids = synthetic_pool(rng, taxonomy, per_class=10, dim=16)
    import pandas as pd

    frame = pd.DataFrame({"id": ids, "category": np.array(taxonomy.categories)[labels]})
    pool = EmbeddedPool(frame, x, taxonomy, HashEmbedder(16))
    small = export_pool(pool, tmp_path / "small.npz", KNNConfig(k=3))
    assert "ann" not in small.metadata and ANN_MEMBER not in np.load(tmp_path / "small.npz").files
    monkeypatch.setattr(config, "ANN_THRESHOLD", len(x))
    big = export_pool(pool, tmp_path / "big.npz", KNNConfig(k=3))
    assert big.metadata["ann"]["rows"] == len(x) and "HNSW index" in big.summary()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(5, 60), st.floats(0.85, 0.99))
def test_near_duplicate_filters_agree_with_and_without_the_index(seed, n, threshold):
    rng = np.random.default_rng(seed)
    x = unit_rows(rng, n, 16)
    copies = rng.integers(0, n, n // 3)
    x = np.concatenate([x, x[copies] + 0.02 * rng.normal(size=(len(copies), 16)).astype(np.float32)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = x[rng.permutation(len(x))]
    np.testing.assert_array_equal(first_of_near_duplicates(x, threshold, ann=True),
                                  first_of_near_duplicates(x, threshold, ann=False))
    np.testing.assert_allclose(max_similarity(x[:10], x[10:], ann=True), max_similarity(x[:10], x[10:], ann=False),
                               atol=1e-5)


def test_an_exported_pool_with_an_index_routes_real_messages_like_exact_search(small_pool, e5, tmp_path):
    from workbench.decisions.export import export_pool
    from tests.helpers import run_cli

    export_pool(small_pool, tmp_path / "ann.npz", KNNConfig(k=5), ann=True)
    export_pool(small_pool, tmp_path / "exact.npz", KNNConfig(k=5))
    texts = ["how do I reverse a string in python", "¿cuál es la capital de Perú?", "晚安，明天见",
             "prove that there are infinitely many primes", "write me a haiku about autumn rain"]
    a, b = Router.load(tmp_path / "ann.npz", embedder=e5), Router.load(tmp_path / "exact.npz", embedder=e5)
    assert a.index is not None and b.index is None
    assert [d.to_dict(neighbors=True) for d in a.route_batch(texts)] == \
        [d.to_dict(neighbors=True) for d in b.route_batch(texts)]
    msgs = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    res = run_cli("route", "--pool", tmp_path / "ann.npz", stdin=msgs)
    assert res.returncode == 0, res.stderr
    assert [json.loads(line)["tier"] for line in res.stdout.splitlines()] == [d.tier for d in b.route_batch(texts)]
