import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT, run_cli, write_jsonl
from workbench.cli import main

ROUTE_IN = [
    {"id": "m1", "text": "write a bash one-liner that counts lines in all .py files"},
    {"id": "m2", "text": "谢谢你！你太棒了，晚安 😊"},
    {"id": "m3", "text": "Wie viele Minuten hat ein Tag, wenn man es ausrechnen muss: 24 mal 60?"},
    {"id": "m4", "text": "écris-moi un petit poème sur la mer"},
    {"id": "m5", "text": "¿Cuál es la capital de Canadá?"},
    {"id": "m6", "text": "日本の戦国時代について概要を教えて"},
    {"id": "m7", "text": "Какие плюсы и минусы у удалённой работы?"},
]


def test_help_lists_every_command():
    out = run_cli("--help").stdout
    for cmd in ("evaluate", "export", "route", "score"):
        assert cmd in out


@pytest.mark.model
def test_evaluate_prints_a_table_and_writes_json(small_pool_file, cache_dir, tmp_path, capsys):
    out_json = tmp_path / "m.json"
    assert main(["evaluate", "--pool-dir", str(small_pool_file), "--cache-dir", str(cache_dir),
                 "--k", "5", "--vote", "majority", "--no-center", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "tier accuracy" in out and "per category" in out and "coding" in out
    data = json.loads(out_json.read_text())
    assert 0.5 < data["loo"]["tier_accuracy"] <= 1 and data["config"]["k"] == 5


@pytest.mark.model
def test_export_then_route_from_stdin_in_input_order(small_pool_file, cache_dir, tmp_path):
    npz = tmp_path / "pool.npz"
    assert main(["export", "--pool-dir", str(small_pool_file), "--cache-dir", str(cache_dir), "--out", str(npz),
                 "--k", "5", "--vote", "distance", "--center"]) == 0
    stdin = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in ROUTE_IN)
    res = run_cli("route", "--pool", str(npz), stdin=stdin)
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["id"] for o in out] == [m["id"] for m in ROUTE_IN]
    assert all(set(o) == {"id", "category", "tier", "confidence", "margin", "abstain"} for o in out)
    assert out[0]["tier"] == "strong"


EXPECTED_TIERS = ["strong", "cheap", "strong", "medium", "cheap", "medium", "medium"]


def test_route_on_the_bundled_pool_works_in_seven_languages(bundled_npz):
    stdin = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in ROUTE_IN)
    res = run_cli("route", "--pool", str(bundled_npz), stdin=stdin)
    assert res.returncode == 0, res.stderr
    tiers = [json.loads(line)["tier"] for line in res.stdout.splitlines()]
    assert tiers == EXPECTED_TIERS


def test_score_reports_metrics_for_a_labelled_file(small_npz, tmp_path):
    rows = [dict(ROUTE_IN[0], category="coding"), dict(ROUTE_IN[1], category="casual"),
            dict(ROUTE_IN[6], category="research_lookup", alt_category="analysis")]
    res = run_cli("score", "--pool", str(small_npz), "--input", str(write_jsonl(tmp_path / "l.jsonl", rows)))
    assert res.returncode == 0, res.stderr
    assert "tier accuracy" in res.stdout and "messages 3" in res.stdout


@pytest.mark.parametrize("lines, message", [
    (['{"id": 1, "text": "hi"}', '{"id": 2, "text": '], "<stdin>:2: invalid JSON"),
    (['{"id": 1}'], "<stdin>:1: missing or empty 'text'"),
])
def test_bad_route_input_is_one_line_exit_2(small_npz, lines, message):
    res = run_cli("route", "--pool", str(small_npz), stdin="\n".join(lines) + "\n")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and message in res.stderr and "Traceback" not in res.stderr


def test_missing_pool_file_is_one_line_exit_2(tmp_path):
    res = run_cli("route", "--pool", str(tmp_path / "nope.npz"), stdin="")
    assert res.returncode == 2 and "no such file" in res.stderr and "Traceback" not in res.stderr


def test_score_rejects_unknown_label_with_line(small_npz, tmp_path):
    p = write_jsonl(tmp_path / "l.jsonl", [dict(ROUTE_IN[0], category="coding"), dict(ROUTE_IN[1], category="chitchat")])
    res = run_cli("score", "--pool", str(small_npz), "--input", str(p))
    assert res.returncode == 2 and "l.jsonl:2: unknown category 'chitchat'" in res.stderr
