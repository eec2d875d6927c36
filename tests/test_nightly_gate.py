"""The nightly's promotion gate over several nights: a fresh start keeps its pool, a damaged pool is refused (the
kept pool stays), a good one is promoted and becomes the bar; the index says each plainly and links the page.

The notebooks are not run (papermill and UMAP are not needed): each "night" is a run folder holding the pool the
export notebook would have written, and the gate runs on small labelled sets with the real default encoder.
"""
import json
import shutil

import pytest

from tests.test_promote import DAMAGED, damaged_npz, labelled  # noqa: F401 (fixtures)
from workbench.report.gate import KEPT_POOL, gate_sentence, nightly_gate
from workbench.report.index import write_index


def night(reports, name, pool, labelled, cache_dir):
    run = reports / name
    run.mkdir(parents=True)
    if pool is not None:
        shutil.copyfile(pool, run / "pool.npz")
    gate = nightly_gate(run, reports, labelled=labelled, cache_dir=cache_dir)
    page = write_index(run, previous=False).read_text(encoding="utf-8")
    return gate, page


def kept_run(reports):
    return json.loads((reports / KEPT_POOL).with_suffix(".json").read_text())["run"]


@pytest.mark.model
def test_the_gate_over_nights_keeps_refuses_and_promotes(small_npz, damaged_npz, labelled, cache_dir,  # noqa: F811
                                                         tmp_path):
    reports = tmp_path / "reports"
    gate, page = night(reports, "2026-12-01", small_npz, labelled, cache_dir)
    assert gate == {"status": "no_previous"} and "no previous pool" in page
    assert (reports / KEPT_POOL).read_bytes() == small_npz.read_bytes() and kept_run(reports) == "2026-12-01"

    gate, page = night(reports, "2026-12-02", damaged_npz, labelled, cache_dir)
    assert gate["status"] == "refuse" and gate["previous"] == "2026-12-01"
    assert f"{DAMAGED}.jsonl" in gate["reasons"] and "REFUSE" in page and "href='promotion.html'" in page
    report = json.loads((reports / "2026-12-02" / "promotion.json").read_text())
    assert report["verdict"] == "refuse" and (reports / "2026-12-02" / "promotion.html").exists()
    assert (reports / KEPT_POOL).read_bytes() == small_npz.read_bytes()  # a refused pool never becomes the bar

    gate, page = night(reports, "2026-12-03", small_npz, labelled, cache_dir)
    assert gate["status"] == "promote" and gate["previous"] == "2026-12-01" and "PROMOTE" in page
    assert kept_run(reports) == "2026-12-03"

    gate, page = night(reports, "2026-12-04", None, labelled, cache_dir)
    assert gate == {"status": "no_pool"} and "no pool.npz was exported tonight" in page


def test_the_index_sentence_escapes_and_names_the_set_and_amount():
    cls, text, link = gate_sentence({"status": "refuse", "previous": "2026-12-01",
                                     "reasons": "<b>eval/x</b>: tier accuracy falls by 4.0 points"})
    assert cls == "failed" and "eval/x" in text and "4.0 points" in text and link == "promotion.html"
    assert gate_sentence(None) is None


def test_an_index_with_an_html_payload_in_a_reason_shows_it_as_text(tmp_path):
    from workbench.report.record import record_metrics

    record_metrics(tmp_path, "gate", {"status": "refuse", "previous": "p", "reasons": "<script>alert(1)</script>"})
    page = write_index(tmp_path, previous=False).read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


@pytest.mark.papermill
def test_workbench_nightly_runs_the_gate_after_its_notebooks(small_npz, labelled, cache_dir, tmp_path,  # noqa: F811
                                                             monkeypatch):
    """Two nights of a one-notebook nightly that exports a pool: the first keeps it, the second is gated."""
    from tests.test_nightly import make_notebook
    from workbench.report.nightly import run_nightly

    notebooks, evals = tmp_path / "notebooks", tmp_path / "eval"
    notebooks.mkdir()
    evals.mkdir()
    for path in labelled:
        shutil.copyfile(path, evals / path.name)
    make_notebook(notebooks / "06_export.ipynb", "output_dir = None",
                  "import os, shutil\nshutil.copyfile(os.environ['GATE_TEST_POOL'], os.path.join(output_dir, "
                  "'pool.npz'))")
    monkeypatch.setenv("GATE_TEST_POOL", str(small_npz))
    log = tmp_path / "log"  # the gateway's decision log: the gate says what tonight's pool changes on it
    log.mkdir()
    (log / "decisions-2026-12-01.jsonl").write_text("".join(json.dumps(
        {"request_id": str(i), "text_sha256": "0" * 64, "text": t, "upstream_tier": tier, "prompt_tokens": 100,
         "completion_tokens": 50, "cost": c, **extra}) + "\n" for i, (t, tier, c, extra) in enumerate(
        [("write a python function to reverse a list", "strong", 0.01, {}), ("hi there!", "cheap", 0.0001, {}),
         ("compare two laptops for me", "medium", 0.001, {}), ("forwarded as asked", "strong", 0.01, {"routed": False})])),
        encoding="utf-8")
    params = {"eval_dir": str(evals), "conversations_dir": str(tmp_path / "none"), "cache_dir": str(cache_dir),
              "decision_log": str(log)}
    reports = tmp_path / "reports"
    first = run_nightly(params, reports_dir=reports, date="2026-12-01", notebooks_dir=notebooks)
    assert "no previous pool" in (first / "index.html").read_text()
    second = run_nightly(params, reports_dir=reports, date="2026-12-02", notebooks_dir=notebooks)
    page = (second / "index.html").read_text()
    assert "Promotion gate: PROMOTE" in page and "kept from 2026-12-01" in page and (second / "promotion.html").exists()
    metrics = json.loads((second / "metrics.json").read_text())["gate"]
    assert metrics["status"] == "promote" and metrics["sets"] == len(labelled)
    report = json.loads((second / "promotion.json").read_text())  # the same pool: nothing moves on the logged traffic
    assert report["decision_log"]["n"] == 3 and report["decision_log"]["changed"] == 0  # the passthrough decided nothing
    assert report["decision_log"]["cost_change"] == 0 and report["inputs"]["decision_log"] == str(log)
