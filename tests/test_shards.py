"""Embedded message logs as Parquet shards: reading logs, planning, the per-shard function, resuming, reading back."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tests.fake_llm import FakeLLM
from tests.helpers import ROOT, HashEmbedder, write_jsonl
from workbench.dataset.embeddings import embed_texts
from workbench.dataset.shards import (MANIFEST, ShardTask, embed_shard, load_shards, plan_shards, read_messages,
                                      read_shard, verify_shard)
from workbench import config
from workbench.errors import ConfigError, DataError
from workbench.io import normalize_text, text_hash
from workbench.scale.embed_logs import embed_logs

ROWS = [{"id": f"m{i}", "text": t} for i, t in enumerate([
    "how do I reverse a string in python", "¿cuál es la capital de Perú?", "How do I reverse a string in Python",
    "晚安，明天见", "   ", "write me a haiku about autumn rain", "how do i reverse a string   in python",
    "Wie spät ist es in Tokio?"])]


def parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_messages_are_read_from_jsonl_csv_and_parquet_with_hash_ids(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", ROWS[:2])
    with open(tmp_path / "b.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, ["text"])
        w.writeheader()
        w.writerow({"text": ROWS[2]["text"]})
    c = parquet(tmp_path / "c.parquet", [{"message": ROWS[3]["text"], "id": "p1"}])
    got = list(read_messages([a, tmp_path / "b.csv"])) + list(read_messages(c, text_column="message"))
    assert got == [("m0", ROWS[0]["text"]), ("m1", ROWS[1]["text"]),
                   (f"msg-{text_hash(ROWS[2]['text'])[:16]}", ROWS[2]["text"]), ("p1", ROWS[3]["text"])]


def test_a_bad_row_names_the_file_and_line(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], {"id": "x", "text": 7}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: missing or non-string 'text'"):
        list(read_messages(bad))
    with pytest.raises(DataError, match="unknown message file type"):
        list(read_messages(tmp_path / "log.txt"))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a b", "A  b", "c", " ", "C", "d e f", "é", "É"]), max_size=40), st.integers(1, 7))
def test_planning_keeps_one_row_per_normalised_text_in_input_order(texts, size):
    tasks, counts = plan_shards(((str(i), t) for i, t in enumerate(texts)), "out", rows_per_shard=size)
    kept = [t for task in tasks for t in task.texts]
    firsts = {}
    for t in texts:
        if t.strip():
            firsts.setdefault(normalize_text(t), t)
    assert kept == list(firsts.values())
    assert all(1 <= len(task.texts) <= size for task in tasks)
    assert counts["read"] == len(texts) and counts["rows"] == len(kept)
    assert counts["empty"] + counts["duplicates"] + counts["rows"] == len(texts)


def test_rows_per_shard_must_be_positive():
    with pytest.raises(ConfigError, match="rows per shard must be an integer >= 1; got 0"):
        plan_shards([], "out", rows_per_shard=0)


def test_the_shard_function_is_idempotent_and_skips_a_verified_shard(tmp_path):
    emb = HashEmbedder()
    task = ShardTask(0, str(tmp_path / "part-00000.parquet"), ("a", "b"), ("hello there", "good night"))
    first = embed_shard(task, emb)
    data, mtime = open(task.path, "rb").read(), os.stat(task.path).st_mtime_ns
    again = embed_shard(task, emb)
    assert first["computed"] and not again["computed"]
    assert open(task.path, "rb").read() == data and os.stat(task.path).st_mtime_ns == mtime
    shard = read_shard(task.path)
    assert shard.ids == ["a", "b"] and shard.text_hashes == [text_hash("hello there"), text_hash("good night")]
    np.testing.assert_array_equal(shard.vectors, emb.encode(["hello there", "good night"]))
    assert shard.spec["backend"] == emb.name and shard.vectors.dtype == np.float32


def test_a_damaged_or_foreign_shard_is_recomputed(tmp_path):
    emb = HashEmbedder()
    task = ShardTask(0, str(tmp_path / "part-00000.parquet"), ("a",), ("hello there",))
    embed_shard(task, emb)
    data = open(task.path, "rb").read()
    open(task.path, "wb").write(data[: len(data) // 2])
    assert not verify_shard(task, emb.spec)
    assert embed_shard(task, emb)["computed"] and verify_shard(task, emb.spec)
    other = ShardTask(0, task.path, ("a",), ("another text",))
    assert not verify_shard(other, emb.spec)
    assert not verify_shard(task, dict(emb.spec, model_id="other@2"))


def test_an_interrupted_write_leaves_no_half_shard(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    def broken(table, fh, **kw):
        fh.write(b"PAR1 half a shard")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", broken)
    task = ShardTask(0, str(tmp_path / "part-00000.parquet"), ("a",), ("hello there",))
    with pytest.raises(KeyboardInterrupt):
        embed_shard(task, HashEmbedder())
    assert list(tmp_path.iterdir()) == []


def test_a_run_resumes_without_recomputing_finished_shards(tmp_path):
    class Dying(HashEmbedder):
        calls = 0

        def encode(self, texts):
            Dying.calls += 1
            if Dying.calls == 3:
                raise KeyboardInterrupt
            return super().encode(texts)

    log = write_jsonl(tmp_path / "log.jsonl", [{"id": f"r{i}", "text": f"message number {i}"} for i in range(10)])
    out = tmp_path / "shards"
    with pytest.raises(KeyboardInterrupt):
        embed_logs([log], out, backend=Dying(), rows_per_shard=3)
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    with pytest.raises(DataError, match="did not finish"):
        load_shards(out)
    counting = []

    class Counting(HashEmbedder):
        def encode(self, texts):
            counting.append(list(texts))
            return super().encode(texts)

    s = embed_logs([log], out, backend=Counting(), rows_per_shard=3)
    assert (s["computed"], s["skipped"], s["rows"]) == (2, 2, 10)
    assert counting == [[f"message number {i}" for i in range(6, 9)], ["message number 9"]]
    whole = load_shards(out)
    assert whole.ids == [f"r{i}" for i in range(10)]
    np.testing.assert_allclose(whole.vectors, HashEmbedder().encode(whole.texts), atol=1e-6)
    assert json.loads((out / MANIFEST).read_text())["shards"] == [f"part-0000{i}.parquet" for i in range(4)]


def test_shards_of_another_backend_are_refused(tmp_path):
    log = write_jsonl(tmp_path / "log.jsonl", ROWS)
    embed_logs([log], tmp_path / "s", backend=HashEmbedder())
    with pytest.raises(DataError, match="made with test-hash"):
        load_shards(tmp_path / "s", spec=dict(HashEmbedder().spec, model_id="other@2"))


def test_the_embedding_cache_takes_vectors_from_shards(tmp_path):
    from workbench.core.embed import Embedder

    class Counting(Embedder):
        name, model_id, dim, prefix = "test-hash", "test-hash@1", 32, ""
        calls = []

        def _encode(self, texts):
            Counting.calls.append(list(texts))
            return HashEmbedder().encode(texts)

    log = write_jsonl(tmp_path / "log.jsonl", ROWS)
    embed_logs([log], tmp_path / "s", backend=HashEmbedder())
    texts = [ROWS[0]["text"], "a text no shard holds", ROWS[5]["text"]]
    v = embed_texts(texts, Counting(), cache_dir=False, shards=[tmp_path / "s"])
    assert Counting.calls == [["a text no shard holds"]]
    np.testing.assert_allclose(v, HashEmbedder().encode(texts), atol=1e-6)


def test_a_composite_backend_takes_its_own_shards_then_each_part_s(tmp_path):
    """Shards embedded with the composite serve it whole; for the rest each part looks in its own shards."""
    from workbench.core.embed import CompositeEmbedder, Embedder

    def part(label, dim):
        class Part(Embedder):
            name, model_id, prefix = label, f"{label}@1", ""
            calls = []

            def _encode(self, texts):
                Part.calls.append(list(texts))
                return HashEmbedder(dim).encode([label + " " + t for t in texts])
        Part.dim = dim
        return Part()

    a, b = part("pa", 8), part("pb", 12)
    log = write_jsonl(tmp_path / "log.jsonl", ROWS)
    embed_logs([log], tmp_path / "whole", backend=CompositeEmbedder([part("pa", 8), part("pb", 12)]))
    embed_logs([write_jsonl(tmp_path / "one.jsonl", [{"id": "x", "text": "only the first part has it"}])],
               tmp_path / "a-only", backend=part("pa", 8))
    both = CompositeEmbedder([a, b])
    texts = [ROWS[0]["text"], "only the first part has it"]
    v = embed_texts(texts, both, cache_dir=False, shards=[tmp_path / "whole", tmp_path / "a-only"])
    assert type(a).calls == [] and type(b).calls == [["only the first part has it"]]
    np.testing.assert_allclose(v, CompositeEmbedder([part("pa", 8), part("pb", 12)]).encode(texts), atol=1e-5)


def test_embed_cli_writes_shards_and_label_takes_them_as_input(tmp_path):
    """The real default model through the CLI, then ``label --input`` on the shard folder."""
    log = write_jsonl(tmp_path / "log.jsonl", ROWS)
    out = tmp_path / "shards"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "workbench", "embed", "--input", str(log), "--out", str(out),
                          "--batch-size", "2", "--json", str(tmp_path / "s.json")],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    assert (f"2 exact duplicate(s) and 1 empty row(s) dropped, 5 embedded with {config.DEFAULT_BACKEND} into 3 shard(s)"
            in res.stdout)
    assert "shards 3/3" in res.stderr and "rows/s" in res.stderr
    with FakeLLM(key="k") as llm:
        res = subprocess.run([sys.executable, "-m", "workbench", "label", "--input", str(out), "--out",
                              str(tmp_path / "labelled.jsonl"), "--cache", str(tmp_path / "c.jsonl"),
                              "--base-url", llm.base_url, "--model", "m", "--api-key-env", "WB_TEST_KEY"],
                             capture_output=True, text=True, cwd=ROOT, env=dict(env, WB_TEST_KEY="k"), timeout=120)
    assert res.returncode == 0, res.stderr
    labelled = [json.loads(line) for line in (tmp_path / "labelled.jsonl").read_text().splitlines()]
    assert [r["id"] for r in labelled] == ["m0", "m1", "m3", "m5", "m7"]


test_embed_cli_writes_shards_and_label_takes_them_as_input = pytest.mark.model(
    test_embed_cli_writes_shards_and_label_takes_them_as_input)


@pytest.mark.model
def test_a_killed_embed_run_resumes_without_recomputing(tmp_path):
    texts = [f"message {i}: " + w for i, w in enumerate(["how do I sort a list", "capital of France",
                                                        "write a poem", "explain recursion"] * 15)]
    log = write_jsonl(tmp_path / "log.jsonl", [{"id": f"k{i}", "text": t} for i, t in enumerate(texts)])
    out = tmp_path / "shards"
    cmd = [sys.executable, "-m", "workbench", "embed", "--input", str(log), "--out", str(out), "--batch-size", "4"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(out.glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    done = {p: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert 2 <= len(done) < 15 and not (out / MANIFEST).exists()
    for p in done:  # every shard under its final name is whole
        read_shard(p)
    res = subprocess.run(cmd + ["--json", str(tmp_path / "s.json")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["skipped"] == len(done) and s["computed"] == 15 - len(done)
    assert all(p.stat().st_mtime_ns == m for p, m in done.items())
    assert len(load_shards(out)) == 60


def test_an_interrupted_rerun_on_other_input_leaves_no_stale_manifest(tmp_path):
    class DyingFirst(HashEmbedder):
        def encode(self, texts):
            raise KeyboardInterrupt

    out = tmp_path / "shards"
    embed_logs([write_jsonl(tmp_path / "a.jsonl", ROWS)], out, backend=HashEmbedder(), rows_per_shard=2)
    other = write_jsonl(tmp_path / "b.jsonl", [{"id": "z", "text": "a different log"}])
    with pytest.raises(KeyboardInterrupt):
        embed_logs([other], out, backend=DyingFirst(), rows_per_shard=2)
    with pytest.raises(DataError, match="did not finish"):
        load_shards(out)
