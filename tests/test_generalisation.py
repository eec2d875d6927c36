"""Scoring a pool on labelled sets it never saw: the sampling, the accepted-alternative rule, the CLI, the index flag."""
import json

import numpy as np
import pytest

from tests.helpers import ROOT, run_cli, write_jsonl
from workbench.analysis.generalisation import read_eval_dir, tier_outcomes
from workbench.errors import DataError
from workbench.report.index import generalisation_gap

ROWS = [{"id": f"q{i}", "text": f"question number {i}", "category": "coding", "alt_category": None} for i in range(30)]


def test_each_file_is_a_source_sampled_with_a_seed(taxonomy, tmp_path):
    write_jsonl(tmp_path / "big.jsonl", ROWS)
    write_jsonl(tmp_path / "small.jsonl", ROWS[:5])
    a = read_eval_dir(tmp_path, taxonomy, per_source=10, seed=0)
    assert a.groupby("set").size().to_dict() == {"big": 10, "small": 5}
    assert a.equals(read_eval_dir(tmp_path, taxonomy, per_source=10, seed=0))
    assert not a["id"].equals(read_eval_dir(tmp_path, taxonomy, per_source=10, seed=1)["id"])
    write_jsonl(tmp_path / "another.jsonl", ROWS[:3])  # a new source leaves the other samples alone
    b = read_eval_dir(tmp_path, taxonomy, per_source=10, seed=0)
    assert b[b["set"] == "big"]["id"].tolist() == a[a["set"] == "big"]["id"].tolist()
    assert len(read_eval_dir(tmp_path, taxonomy, per_source=None)) == 38


def test_bad_rows_name_the_file_and_line(taxonomy, tmp_path):
    write_jsonl(tmp_path / "x.jsonl", ROWS[:2] + [{"id": "bad", "text": "hi", "category": "gossip"}])
    with pytest.raises(DataError, match=r"x.jsonl:3: unknown category 'gossip'"):
        read_eval_dir(tmp_path, taxonomy)
    write_jsonl(tmp_path / "x.jsonl", [{"id": "e", "text": "  ", "category": "coding"}])
    with pytest.raises(DataError, match=r"x.jsonl:1: missing or empty 'text'"):
        read_eval_dir(tmp_path, taxonomy)
    with pytest.raises(DataError, match="no labelled"):
        read_eval_dir(tmp_path / "none", taxonomy)


def test_an_accepted_alternative_counts_at_its_own_tier(taxonomy):
    accepted, true, routed = tier_outcomes(
        ["simple_lookup", "simple_lookup", "simple_lookup", "coding"], ["analysis", "analysis", None, None],
        ["analysis", "research_lookup", "research_lookup", "analysis"], ["medium", "medium", "medium", "medium"],
        taxonomy)
    assert list(accepted) == ["analysis", "simple_lookup", "simple_lookup", "coding"]
    # the alternative itself is right; another category of its tier is judged against `category` (an upgrade)
    assert list(routed == true) == [True, False, False, False]
    assert list(routed > true) == [False, True, True, False] and list(routed < true) == [False, False, False, True]


def test_the_index_flags_a_gap_of_more_than_five_points():
    assert generalisation_gap({"evaluate": {"tier_accuracy": 0.87}, "generalisation": {"tier_accuracy": 0.83}}) is None
    flag = generalisation_gap({"evaluate": {"tier_accuracy": 0.87}, "generalisation": {"tier_accuracy": 0.80, "n": 980}})
    assert "7.0 points" in flag and "980 evaluation prompts" in flag
    assert generalisation_gap({"evaluate": {"tier_accuracy": 0.87}}) is None


def test_the_gap_flag_compares_the_shipped_head_with_itself():
    """The k-NN vote's leave-one-out (87%) is near the head's OOD score (84.9%), but the head itself drops 5.7
    points from its in-pool 90.6%: that is the gap to flag."""
    metrics = {"evaluate": {"tier_accuracy": 0.87}, "export": {"head_oof_tier_accuracy": 0.906},
               "generalisation": {"tier_accuracy": 0.849, "n": 980}}
    flag = generalisation_gap(metrics)
    assert flag and "shipped head" in flag and "5.7 points" in flag and "90.6%" in flag
    metrics["generalisation"]["tier_accuracy"] = 0.87  # the vote's LOO would now flag nothing either way
    metrics["evaluate"]["tier_accuracy"] = 0.80
    assert generalisation_gap(metrics) is None


def test_score_dir_routes_every_set_with_the_pools_policy(small_npz, cache_dir, tmp_path):
    evals = tmp_path / "eval"
    evals.mkdir()
    for f in ("mt_bench_en.jsonl", "xpersona_casual_openers.jsonl"):
        write_jsonl(evals / f, (ROOT / "data" / "eval" / f).read_text(encoding="utf-8").splitlines()[:8])
    res = run_cli("score", "--pool", small_npz, "--dir", evals, "--per-source", 6, "--cache-dir", cache_dir,
                  "--json", tmp_path / "s.json")
    assert res.returncode == 0, res.stderr
    assert "mt_bench_en" in res.stdout and "rule: a routed category equal to alt_category" in res.stdout
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["headline"]["n"] == 12 and data["headline"]["sources"] == 2
    assert {r["set"] for r in data["per_source"]} == {"mt_bench_en", "xpersona_casual_openers"}
    assert 0 <= data["headline"]["abstain_rate"] <= 1 and np.isfinite(data["headline"]["tier_accuracy"])


def test_score_needs_a_file_or_a_folder(capsys):
    from workbench.cli import main

    with pytest.raises(SystemExit) as e:
        main(["score", "--pool", "x.npz"])
    assert e.value.code == 2 and "one of the arguments --input --dir is required" in capsys.readouterr().err


def test_confusions_name_the_routed_tier_when_the_policy_moves_it(taxonomy):
    """A cost policy may route a message below its argmax category's tier: the confusion says which tier it got."""
    import pandas as pd

    from workbench.analysis.generalisation import _confusions

    routed = pd.DataFrame({
        "accepted": ["reasoning", "reasoning", "reasoning", "casual"],
        "category_routed": ["reasoning", "reasoning", "analysis", "coding"],
        "tier_routed": ["medium", "medium", "medium", "strong"],
        "tier_correct": [False, False, False, False], "set": ["s"] * 4, "text": list("abcd")})
    c = _confusions(routed, taxonomy, top=5, examples=5)
    first = c.iloc[0]
    assert (first["true"], first["true_tier"], first["routed"], first["tier"], first["direction"], first["count"]) == \
        ("reasoning", "strong", "reasoning", "medium", "downgrade", 2)
    assert set(c["direction"]) == {"downgrade", "upgrade"} and len(c) == 4
