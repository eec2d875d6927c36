"""The documented sequence (docs/traffic.md) on the bundled sample: import -> label -> merge -> evaluate."""
import json

import pytest

from tests.helpers import ROOT
from tests.fake_llm import FakeLLM
from tests.helpers import run_cli
from tests.test_label import KEY, run_label

TRANSCRIPTS = ROOT / "data" / "transcripts"


def test_help_lists_the_traffic_commands():
    out = run_cli("--help").stdout
    for cmd in ("import", "label", "merge", "shadow"):
        assert cmd in out


@pytest.mark.model
def test_import_label_merge_evaluate_on_the_bundled_sample(small_pool_file, cache_dir, tmp_path):
    cand, labelled, cache = tmp_path / "candidates.jsonl", tmp_path / "labelled.jsonl", tmp_path / "labels.jsonl"
    merged, metrics = tmp_path / "real-sample.jsonl", tmp_path / "metrics.json"
    res = run_cli("import", str(TRANSCRIPTS / "sample_conversations.jsonl"), str(TRANSCRIPTS / "sample_conversations.json"),
                  "--out", str(cand), "--scrub", "--pool-dir", str(small_pool_file), "--cache-dir", str(cache_dir))
    assert res.returncode == 0, res.stderr
    n = len(cand.read_text().splitlines())
    assert n >= 40 and f"kept {n}" in res.stdout

    with FakeLLM(key=KEY) as llm:
        res = run_label(llm, cand, labelled, cache, "--concurrency", "4")
        assert res.returncode == 0, res.stderr
        assert len(llm.requests) == n
    assert f"{n} labelled" in res.stdout

    res = run_cli("merge", "--input", str(labelled), "--out", str(merged), "--pool-dir", str(small_pool_file))
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in merged.read_text().splitlines()]
    assert len(rows) == n and {r["source"] for r in rows} == {"real"} and {r["label_source"] for r in rows} == {"test-model"}

    res = run_cli("evaluate", "--pool-dir", str(small_pool_file), "--pool-dir", str(merged), "--cache-dir",
                  str(cache_dir), "--k", "5", "--vote", "distance", "--center", "--json", str(metrics))
    assert res.returncode == 0, res.stderr
    assert json.loads(metrics.read_text())["loo"]["n"] == 140 + n
    assert KEY not in cand.read_text() + labelled.read_text() + cache.read_text() + merged.read_text()
