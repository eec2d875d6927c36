"""The loop end to end (issue 19): a day of traffic through the gateway becomes the next pool, behind the gate.

One synthetic day of held-out messages is routed through the real gateway (uvicorn, test upstreams on 127.0.0.1,
the official ``openai`` client), two answers are rated down through ``POST /v1/feedback``, the traffic section is
drawn from the decision log the gateway wrote, ``workbench queue`` picks what to label, ``workbench label`` labels
it against a local test LLM server, ``workbench merge`` adds it to the pool, ``workbench export`` writes the
candidate and ``workbench promote`` promotes it. The same flow with a third of the candidate's coding messages
relabelled to the cheaper ``casual`` is refused, with the coding set named.
"""
import json
import os
import time

import pytest

from tests.helpers import ROOT, log_lines, run_cli
from tests.test_promote import CHEAPER, DAMAGED, labelled, promote_args  # noqa: F401 (labelled is a fixture)
from workbench.cli import main

CATEGORIES = ("casual", "simple_lookup", "analysis", "research_lookup", "creative", "coding", "reasoning")
PER_CATEGORY = 6  # the day's messages per category: bundled pool rows 50-55 of it, outside the small pool (0-19)
# and the labelled sets the gate reads (20-49)


def day_of_traffic():
    """Held-out pool messages and their labels: {text: category}."""
    truth = {}
    for category in CATEGORIES:
        rows = [json.loads(x) for x in (ROOT / "data" / "pool" / f"{category}.jsonl").read_text("utf-8").splitlines()
                if x.strip()]
        for r in [r for r in rows if r["category"] == category][50:50 + PER_CATEGORY]:
            truth[r["text"]] = category
    return truth


def wait_for_lines(folder, pattern, n, timeout=30):
    """The log writer is off the request path: wait until ``n`` complete lines reached the files."""
    deadline = time.monotonic() + timeout
    while True:
        lines = log_lines(folder, pattern)
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def route_the_day(gateway, truth):
    """Every message through the gateway; the first coding and the first reasoning answer rated down."""
    import httpx

    from tests.test_gateway import TOKEN, chat

    client, ids = gateway.client(), {}
    for text in truth:
        ids[text] = chat(client, text).headers["x-request-id"]
    rated = [next(t for t in truth if truth[t] == c) for c in ("coding", "reasoning")]
    for text in rated:
        r = httpx.post(gateway.url("/v1/feedback"), json={"request_id": ids[text], "rating": "down",
                                                          "tier_wanted": "strong"},
                       headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert r.status_code == 202, r.text
    decisions = wait_for_lines(gateway.decisions, "decisions-*.jsonl", len(truth))
    feedback = wait_for_lines(gateway.decisions, "feedback-*.jsonl", len(rated))
    assert len(decisions) == len(truth) and len(feedback) == len(rated)
    return rated


def traffic_section(folder, small_pool, small_npz, cache_dir, run):
    """What 09_traffic records, from the gateway's log (no UMAP: the map has its own test)."""
    from workbench import plots
    from workbench.analysis.traffic import drift, headline, open_log, uncovered_by_day
    from workbench.analysis.uncovered import coverage_of, coverage_space, uncovered_clusters
    from workbench.dataset.embeddings import embed_texts
    from workbench.report.index import write_index
    from workbench.report.record import record_figure, record_metrics, record_table
    from workbench.traffic.ingest import detect_language

    log = open_log(folder)
    messages = log.messages()
    vectors = embed_texts(messages["text"], coverage_space(), cache_dir=cache_dir)
    coverage = coverage_of(small_pool.vectors, vectors)
    _, clusters = uncovered_clusters(vectors[coverage.uncovered], messages[coverage.uncovered].reset_index(drop=True),
                                     min_cluster_size=2, language=detect_language)
    record_table(run, "09_tier_mix", log.mix("tier", wide=True).round(4), title="Traffic mix by tier per day (UTC)")
    record_figure(run, "09_tier_mix", plots.plot_traffic_mix(log.mix("tier")))
    record_table(run, "09_feedback", log.feedback().round(4), title="Feedback per routed tier")
    flag = drift(log.mix("tier"), uncovered_by_day(messages["day"], coverage.uncovered))
    metrics = headline(log, uncovered_share=coverage.share, flag=flag)
    record_metrics(run, "traffic", metrics, replace=True)
    return metrics, write_index(run, previous=False).read_text("utf-8")


def export(pool_files, out, cache_dir):
    """The small pool's plain export (the k-NN vote, never abstaining), as the gate's fixtures make it."""
    args = [a for p in pool_files for a in ("--pool-dir", p)]
    res = run_cli("export", *args, "--backend", "e5-small", "--cache-dir", cache_dir, "--k", 5, "--vote", "distance",
                  "--center", "--head", "knn", "--never-abstain", "--calibration", "none", "--out", out)
    assert res.returncode == 0, res.stderr
    return out


def damaged(pool_files, folder):
    """The pool with a third of its coding messages relabelled to the cheaper casual."""
    rows = [json.loads(x) for p in pool_files for x in p.read_text("utf-8").splitlines() if x.strip()]
    coding = [i for i, r in enumerate(rows) if r["category"] == DAMAGED]
    for i in coding[::3]:
        rows[i]["category"] = CHEAPER
    folder.mkdir()
    path = folder / "pool.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


@pytest.mark.model
@pytest.mark.serve
def test_a_day_of_traffic_becomes_the_next_pool_behind_the_gate(small_pool_file, small_pool, small_npz, labelled,
                                                                 cache_dir, tmp_path, capsys):
    from tests.fake_llm import FakeLLM, hash_category
    from tests.fake_upstream import FakeUpstream
    from tests.test_gateway import MODELS, Gateway, upstreams_yaml

    truth = day_of_traffic()
    ups = {t: FakeUpstream(t, MODELS[t]).start() for t in MODELS}
    served = tmp_path / "served" / "pool.npz"
    served.parent.mkdir()
    served.write_bytes(small_npz.read_bytes())
    gateway = Gateway(served, tmp_path, upstreams_yaml(ups))
    try:
        rated = route_the_day(gateway, truth)
    finally:
        gateway.stop()
        for s in ups.values():
            s.stop()
    log = gateway.decisions

    # the traffic section of the day, on the index
    metrics, page = traffic_section(log, small_pool, small_npz, cache_dir, tmp_path / "report" / "day")
    assert metrics["decisions"] == len(truth) and metrics["days"] == 1
    assert metrics["feedback"] == f"{len(rated)} rated decisions, {len(rated)} down"
    assert 0 <= metrics["uncovered_share"] <= 1 and metrics["drift"] is False  # one day: nothing to drift from
    assert "Traffic:" in page

    # what to label next: the rated-down answers first, then label, merge, export
    review = tmp_path / "review.jsonl"
    res = run_cli("queue", "--decision-log", log, "--pool-dir", small_pool_file, "--cache-dir", cache_dir,
                  "--n", 200, "--out", review)
    assert res.returncode == 0, res.stderr
    queued = [json.loads(x) for x in review.read_text("utf-8").splitlines()]
    assert [q["reason"] for q in queued[:len(rated)]] == ["feedback_down"] * len(rated)
    assert {q["text"] for q in queued[:len(rated)]} == set(rated)
    with FakeLLM(answer=lambda text: truth.get(text) or hash_category(text), key="sk-test-loop") as llm:
        env = dict(os.environ, PYTHONPATH=str(ROOT), LOOP_TEST_KEY="sk-test-loop")
        res = run_cli("label", "--input", review, "--out", tmp_path / "labelled.jsonl", "--cache",
                      tmp_path / "label-cache.jsonl", "--base-url", llm.base_url, "--model", "test-model",
                      "--api-key-env", "LOOP_TEST_KEY", env=env)
    assert res.returncode == 0, res.stderr
    new = tmp_path / "new" / "real.jsonl"
    new.parent.mkdir()
    res = run_cli("merge", "--input", tmp_path / "labelled.jsonl", "--out", new, "--pool-dir", small_pool_file)
    assert res.returncode == 0, res.stderr
    merged = [json.loads(x) for x in new.read_text("utf-8").splitlines()]
    assert len(merged) == len(queued) and all(m["source"] == "real" for m in merged)
    candidate = export([small_pool_file, new], tmp_path / "candidate.npz", cache_dir)

    # the gate: the candidate is promoted (and installed where the gateway served from)
    out = tmp_path / "promotion"
    assert main(promote_args(candidate, small_npz, out, labelled, cache_dir, "--decision-log", str(log),
                             "--install", str(served))) == 0
    report = json.loads((out / "promotion.json").read_text())
    assert report["verdict"] == "promote" and report["decision_log"]["n"] == len(truth)
    assert served.read_bytes() == candidate.read_bytes()

    # the same flow with a damaged candidate: refused, the coding set named
    broken = export([damaged([small_pool_file, new], tmp_path / "damaged")], tmp_path / "damaged.npz", cache_dir)
    out = tmp_path / "promotion-damaged"
    capsys.readouterr()
    assert main(promote_args(broken, candidate, out, labelled, cache_dir, "--install", str(served))) == 1
    report = json.loads((out / "promotion.json").read_text())
    assert report["verdict"] == "refuse" and report["reasons"]
    assert all(f"{DAMAGED}.jsonl" in r for r in report["reasons"]), report["reasons"]
    assert f"{DAMAGED}.jsonl" in capsys.readouterr().out
    assert served.read_bytes() == candidate.read_bytes()  # the refused candidate never replaced the served pool
