"""Nothing is lost, nothing half-made is installed (issue 11, classes 4, 12, 14 and 15)."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from tests.helpers import HashEmbedder, ROOT, synthetic_pool, write_jsonl
from workbench.core.artifact import write_pool_npz
from workbench.core.knn import KNNConfig
from workbench.errors import ArtifactError, ConfigError
from workbench.io import atomic_file, write_text_atomic
from workbench.traffic.merge import merge_labelled

ROW = {"id": "real-1", "text": "how do I sort a dict by value in python", "category": "coding",
       "label_source": "m", "lang": "en"}
POOL_ROW = {"id": "p1", "text": "an unrelated pool message", "category": "casual", "source": "written",
            "lang": "en", "label_source": "author"}


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# -- class 12: export runs the loader's checks before the rename ---------------------------------------------------


@pytest.mark.parametrize("poison", ["nan", "constant"])
def test_export_of_poisoned_vectors_fails_and_leaves_the_old_file(tmp_path, taxonomy, poison):
    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=16)
    x[2] = np.nan if poison == "nan" else 0.25
    out = tmp_path / "pool.npz"
    out.write_bytes(b"the artifact in production")
    with pytest.raises(ArtifactError, match=r"pool.npz: .*(NaN|constant).*nothing written"):
        write_pool_npz(out, x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(16).spec,
                       config=KNNConfig(k=3, center=False))
    assert out.read_bytes() == b"the artifact in production" and [p.name for p in tmp_path.iterdir()] == ["pool.npz"]


# -- class 14: two merges to one file -------------------------------------------------------------------------------


def test_a_merge_whose_output_appears_meanwhile_fails_and_the_other_runs_rows_survive(tmp_path, taxonomy,
                                                                                      monkeypatch):
    import workbench.dataset.pool as pool_module

    out = tmp_path / "real.jsonl"
    real_load = pool_module.load_pool

    def load_and_let_the_other_run_win(*a, **kw):  # the other merge finishes while this one reads the pool
        out.write_text('{"the": "other run"}\n', encoding="utf-8")
        return real_load(*a, **kw)

    monkeypatch.setattr(pool_module, "load_pool", load_and_let_the_other_run_win)
    labelled = write_jsonl(tmp_path / "labelled.jsonl", [ROW])
    with pytest.raises(ConfigError, match="was created by another run meanwhile"):
        merge_labelled(labelled, out, pool=write_jsonl(tmp_path / "p.jsonl", [POOL_ROW]), taxonomy=taxonomy)
    assert out.read_text(encoding="utf-8") == '{"the": "other run"}\n'


def test_concurrent_merges_to_one_file_one_wins_and_none_loses_rows(tmp_path, taxonomy):
    pool = write_jsonl(tmp_path / "p.jsonl", [POOL_ROW])
    for round_ in range(5):
        out = tmp_path / f"real-{round_}.jsonl"
        inputs = [write_jsonl(tmp_path / f"l{round_}-{i}.jsonl", [dict(ROW, id=f"r{i}", text=f"{ROW['text']} {i}")])
                  for i in range(4)]
        results, barrier = {}, threading.Barrier(len(inputs))

        def merge(i):
            barrier.wait()
            try:
                results[i] = merge_labelled(inputs[i], out, pool=pool, taxonomy=taxonomy)
            except ConfigError as e:
                results[i] = e
        threads = [threading.Thread(target=merge, args=(i,)) for i in range(len(inputs))]
        [t.start() for t in threads]
        [t.join(60) for t in threads]
        winners = [i for i, r in results.items() if isinstance(r, dict)]
        assert len(winners) == 1, results
        assert f"r{winners[0]}" in out.read_text(encoding="utf-8")


def test_exclusive_atomic_file_refuses_an_existing_path(tmp_path):
    (tmp_path / "x").write_text("keep")
    with pytest.raises(FileExistsError):
        with atomic_file(tmp_path / "x", exclusive=True) as fh:
            fh.write(b"new")
    assert (tmp_path / "x").read_text() == "keep" and [p.name for p in tmp_path.iterdir()] == ["x"]


# -- class 15: temp files of a killed run are cleaned on the next start ------------------------------------------


def test_atomic_write_removes_the_temp_file_a_killed_writer_left(tmp_path):
    stale = tmp_path / f".out.json.{dead_pid()}.abc123.tmp"
    stale.write_bytes(b"half")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".out.json.{sleeper.pid}.def456.tmp"  # another process still writing: left alone
        live.write_bytes(b"in progress")
        write_text_atomic(tmp_path / "out.json", "{}")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.json", live.name])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_embedding_cache_removes_shards_a_killed_run_left(tmp_path):
    from workbench.dataset.embeddings import EmbeddingCache

    cache = EmbeddingCache(tmp_path, HashEmbedder(8))
    cache.dir.mkdir(parents=True)
    stale = cache.dir / f"shard-123-{dead_pid()}.npz.tmp"
    stale.write_bytes(b"half a shard")
    cache.get(["k"])
    assert not stale.exists()


# -- class 4: a sentence-transformers model never reaches the network ---------------------------------------------


@pytest.mark.slow  # imports torch and sentence-transformers (no model is loaded)
def test_an_st_model_missing_locally_fails_without_a_network_call(tmp_path):
    script = """
import socket, sys
calls = []
def guard(self, *a, **kw):
    calls.append(a)
    raise OSError("network blocked in this test")
socket.socket.connect = guard
socket.create_connection = lambda *a, **kw: guard(None, *a)
from workbench.core.embed import get_embedder
from workbench.errors import WorkbenchError
try:
    get_embedder("st:someone/not-in-any-cache-model").encode(["hi"])
except WorkbenchError as e:
    print("refused:", str(e)[:80])
print("connects:", len(calls))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf"),
               TRANSFORMERS_OFFLINE="0")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=300)
    assert "refused: cannot load sentence-transformers model" in res.stdout, res.stdout + res.stderr
    assert "connects: 0" in res.stdout, res.stdout + res.stderr
