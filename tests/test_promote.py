"""The promotion gate: the paired bootstrap, the refusal rule, and ``workbench promote`` end to end."""
import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import PLAIN
from tests.helpers import ROOT
from workbench.cli import main
from workbench.decisions.promote import GateRules, LabelledSet, compare_set, paired_bootstrap
from workbench.errors import ConfigError

DAMAGED, CHEAPER = "coding", "casual"
HELD_OUT = 30  # labelled messages per category, taken after the small pool's first 20


def outcome(name, correct, down):
    return LabelledSet(name=name, ids=[str(i) for i in range(len(correct))], tier_correct=np.asarray(correct, bool),
                       downgrade=np.asarray(down, bool))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60), st.integers(0, 2**32 - 1))
def test_bootstrap_is_deterministic_and_its_interval_holds_the_difference(pairs, seed):
    a, b = np.array(pairs).T
    rules = GateRules(n_boot=200, seed=seed)
    first, second = paired_bootstrap(a, b, rules=rules), paired_bootstrap(a, b, rules=rules)
    assert first == second
    diff, (low, high) = first
    assert diff == pytest.approx(b.mean() - a.mean()) and low <= diff + 1e-12 and diff - 1e-12 <= high


def test_identical_outcomes_have_a_zero_interval():
    assert paired_bootstrap([1, 0, 1], [1, 0, 1], rules=GateRules()) == (0.0, (0.0, 0.0))


def test_a_real_accuracy_fall_refuses_and_names_the_set():
    n = 200
    current = outcome("eval/x", np.ones(n), np.zeros(n))
    candidate = outcome("eval/x", np.arange(n) % 10 != 0, np.arange(n) % 10 == 0)  # 10 points worse, all downgrades
    s = compare_set(current, candidate, rules=GateRules(n_boot=500))
    assert len(s.refusals) == 2 and all(r.startswith("eval/x: ") for r in s.refusals)
    assert "falls by 10.0 points" in s.refusals[0] and "rise by 10.0 points" in s.refusals[1]


def test_a_small_fall_within_the_allowance_passes():
    n = 1000
    current = outcome("s", np.ones(n), np.zeros(n))
    candidate = outcome("s", np.arange(n) % 200 != 0, np.zeros(n))  # 0.5 point, below the 1-point allowance
    assert compare_set(current, candidate, rules=GateRules(n_boot=500)).refusals == []


@pytest.mark.parametrize("bad", [{"max_accuracy_drop": -0.1}, {"confidence": 1.0}, {"n_boot": 10}])
def test_bad_rules_are_refused(bad):
    with pytest.raises(ConfigError):
        GateRules(**bad)


def held_out_set(path, category):
    """Labelled messages of ``category`` from the bundled pool that the small pool does not hold."""
    rows = [json.loads(line) for line in (ROOT / "data" / "pool" / f"{category}.jsonl").read_text().splitlines()
            if line.strip()]
    rows = [r for r in rows if r["category"] == category][20:20 + HELD_OUT]
    path.write_text("".join(json.dumps({"id": r["id"], "text": r["text"], "category": category}, ensure_ascii=False)
                            + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled")
    return [held_out_set(folder / f"{c}.jsonl", c) for c in (DAMAGED, CHEAPER, "analysis")]


@pytest.fixture(scope="module")
def damaged_npz(small_pool_file, taxonomy, e5, cache_dir, tmp_path_factory):
    """The small pool with a third of one category's messages relabelled to a cheaper category, exported."""
    from workbench.core.knn import KNNConfig
    from workbench.dataset.embeddings import load_embedded_pool
    from workbench.decisions.export import export_pool

    folder = tmp_path_factory.mktemp("damaged")
    rows = [json.loads(line) for line in small_pool_file.read_text(encoding="utf-8").splitlines()]
    targets = [i for i, r in enumerate(rows) if r["category"] == DAMAGED]
    for i in targets[::3]:
        rows[i]["category"] = CHEAPER
    (folder / "pool.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    pool = load_embedded_pool(folder / "pool.jsonl", taxonomy=taxonomy, backend=e5, cache_dir=cache_dir)
    path = folder / "damaged.npz"
    export_pool(pool, path, KNNConfig(k=5, vote="distance", center=True), **PLAIN)
    return path


def promote_args(candidate, current, out, labelled, cache_dir, *extra):
    return ["promote", "--candidate", str(candidate), "--current", str(current), "--out", str(out), "--no-eval",
            "--no-conversations", *[a for p in labelled for a in ("--labelled", str(p))], "--cache-dir",
            str(cache_dir), "--n-boot", "500", *extra]


@pytest.mark.model
def test_a_candidate_equal_to_the_current_pool_is_promoted(small_npz, labelled, cache_dir, tmp_path, capsys):
    candidate = tmp_path / "candidate.npz"
    shutil.copyfile(small_npz, candidate)
    log = tmp_path / "log"
    log.mkdir()
    (log / "decisions-2026-12-05.jsonl").write_text("".join(json.dumps(
        {"request_id": str(i), "text_sha256": "0" * 64, "text": t, "upstream_tier": tier, "prompt_tokens": 100,
         "completion_tokens": 50, "cost": c}) + "\n" for i, (t, tier, c) in enumerate(
        [("write a python function to reverse a list", "strong", 0.01), ("hi there!", "cheap", 0.0001),
         ("compare two laptops for me", "medium", 0.001)])), encoding="utf-8")
    out = tmp_path / "report"
    assert main(promote_args(candidate, small_npz, out, labelled, cache_dir, "--per-source", "5",
                             "--decision-log", str(log))) == 0
    assert "PROMOTED" in capsys.readouterr().out
    report = json.loads((out / "promotion.json").read_text())
    assert report["verdict"] == "promote" and report["reasons"] == []
    assert len(report["sets"]) == 3 and all(s["accuracy_diff"] == 0 and s["downgrade_diff"] == 0
                                            for s in report["sets"])
    assert report["decision_log"]["n"] == 3 and report["decision_log"]["changed"] == 0
    assert report["decision_log"]["cost_change"] == 0
    assert "PROMOTE" in (out / "promotion.html").read_text()


@pytest.mark.model
def test_a_damaged_candidate_is_refused_with_its_category_set_named(small_npz, damaged_npz, labelled, cache_dir,
                                                                     tmp_path, capsys):
    out, served = tmp_path / "report", tmp_path / "served.npz"
    shutil.copyfile(small_npz, served)
    before = served.read_bytes()
    assert main(promote_args(damaged_npz, small_npz, out, labelled, cache_dir, "--install", str(served))) == 1
    printed = capsys.readouterr().out
    report = json.loads((out / "promotion.json").read_text())
    assert report["verdict"] == "refuse" and report["reasons"]
    assert all(f"{DAMAGED}.jsonl" in r for r in report["reasons"]), report["reasons"]
    assert "REFUSED" in printed and f"{DAMAGED}.jsonl" in printed
    page = (out / "promotion.html").read_text()
    assert "REFUSE" in page and f"{DAMAGED}.jsonl" in page
    assert served.read_bytes() == before  # a refused candidate is never installed


@pytest.mark.model
def test_install_replaces_the_served_file_atomically(small_npz, damaged_npz, labelled, cache_dir, tmp_path):
    """Promoting the current pool over a served damaged one (it only gains) swaps the file by a rename."""
    import os

    served = tmp_path / "served" / "pool.npz"
    served.parent.mkdir()
    shutil.copyfile(damaged_npz, served)
    inode = os.stat(served).st_ino
    assert main(promote_args(small_npz, served, tmp_path / "report", labelled, cache_dir, "--install",
                             str(served))) == 0
    assert served.read_bytes() == small_npz.read_bytes()
    assert os.stat(served).st_ino != inode  # a new file renamed into place, not the old one rewritten
    assert [p.name for p in served.parent.iterdir()] == ["pool.npz"]  # no temp file left behind


@pytest.mark.model
def test_a_bad_labelled_line_is_one_line_and_exit_2(small_npz, cache_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello", "category": "casual"}\n{"text": "x", "category": "no_such"}\n')
    assert main(promote_args(small_npz, small_npz, tmp_path / "r", [bad], cache_dir)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.jsonl" in err and "2" in err


def test_a_candidate_that_is_not_a_pool_is_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    labelled = tmp_path / "l.jsonl"
    labelled.write_text('{"text": "hello", "category": "casual"}\n')
    assert main(promote_args(junk, junk, tmp_path / "r", [labelled], tmp_path / "c")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "junk.npz" in err


def test_no_labelled_set_is_exit_2(tmp_path, capsys):
    assert main(["promote", "--candidate", "a.npz", "--current", "b.npz", "--out", str(tmp_path), "--no-eval",
                 "--no-conversations"]) == 2
    assert "no labelled set" in capsys.readouterr().err


@pytest.mark.model
def test_conversations_are_routed_as_the_router_routes_them(small_npz, taxonomy, cache_dir):
    """Embedding every turn beforehand (through the cache) changes no decision of route_conversation."""
    from workbench.analysis.conversations import read_conversations
    from workbench.core.router import Router
    from workbench.decisions.promote import route_conversation_set

    frame = read_conversations(ROOT / "data" / "conversations" / "conversations_a.jsonl", taxonomy)
    frame = frame[frame["conversation_id"].isin(frame["conversation_id"].unique()[:8])].reset_index(drop=True)
    router = Router.load(small_npz)
    got = route_conversation_set(router, frame, name="c", cache_dir=cache_dir)
    want = [d.tier for _, c in frame.groupby("conversation_id", sort=False)
            for d in router.route_conversation(c["text"].tolist())]
    rank = {t: i for i, t in enumerate(taxonomy.tiers)}
    true = np.array([rank[taxonomy.tier_map[c]] for c in frame["category"]])
    routed = np.array([rank[t] for t in want])
    np.testing.assert_array_equal(got.tier_correct, routed == true)
    np.testing.assert_array_equal(got.downgrade, routed < true)


@pytest.mark.model
@pytest.mark.serve
def test_a_running_serve_reloads_the_installed_pool(small_npz, damaged_npz, labelled, cache_dir, tmp_path):
    """`workbench serve` on the served file answers with the promoted pool once --install has replaced it."""
    import hashlib
    import time

    from tests.test_serve import Server

    served = tmp_path / "served.npz"
    shutil.copyfile(damaged_npz, served)
    want = hashlib.sha256(small_npz.read_bytes()).hexdigest()
    with Server(served) as server:
        assert server.health()["pool_sha256"] != want
        assert main(promote_args(small_npz, served, tmp_path / "report", labelled, cache_dir, "--install",
                                 str(served))) == 0
        deadline = time.monotonic() + 60
        while server.health()["pool_sha256"] != want:
            assert time.monotonic() < deadline, "the installed pool was not reloaded"
            time.sleep(0.2)
        status, decision = server.post({"text": "write a python function that parses a csv file"})
        assert status == 200 and decision["tier"] in ("cheap", "medium", "strong")


def test_the_page_shows_set_names_and_reasons_as_text(tmp_path):
    from workbench.decisions.promote import promote
    from workbench.report.promotion import write_promotion

    name = '<img src=x onerror="alert(1)">.jsonl'
    n = 100
    result = promote([outcome(name, np.ones(n), np.zeros(n))],
                     [outcome(name, np.arange(n) % 5 != 0, np.arange(n) % 5 == 0)], rules=GateRules(n_boot=200))
    assert not result.promoted
    json_path, html_path = write_promotion(result.to_dict(), tmp_path, inputs={"candidate": name, "current": "c.npz"})
    page = html_path.read_text()
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.jsonl" in page
    report = json.loads(json_path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert report["verdict"] == "refuse" and report["reasons"][0].startswith(name)
