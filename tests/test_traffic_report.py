"""The traffic section in the report: user text from the decision log is shown as text, the drift flag on the index."""
import json

import numpy as np
import pandas as pd
import pytest

from tests.test_traffic import DAY_A, DAY_B, FEEDBACK, XSS, write
from workbench.analysis.traffic import drift, headline, open_log
from workbench.analysis.uncovered import coverage_of, map_rows, uncovered_clusters
from workbench.report.index import traffic_drift, write_index
from workbench.report.record import read_table, record_figure, record_metrics, record_table

pytest.importorskip("duckdb")
pytest.importorskip("plotly")

RAW = ("<script>alert(1)", "<img src=x onerror")


@pytest.fixture
def log(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    write(folder / "decisions-2026-12-01.jsonl", DAY_A)
    write(folder / "decisions-2026-12-02.jsonl", DAY_B)
    write(folder / "feedback-2026-12-01.jsonl", FEEDBACK)
    return open_log(folder)


def section(log, run):
    """What 09_traffic records, on synthetic vectors (no model, no UMAP): tables, the map, the metrics."""
    from workbench.plots import plot_live_confidence, plot_traffic_cost, plot_traffic_map, plot_traffic_mix

    messages = log.messages()
    rng = np.random.default_rng(0)
    pool = np.abs(rng.standard_normal((20, 8))).astype(np.float32)
    pool[:, 4:] = 0
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    vectors = np.repeat(np.eye(8, dtype=np.float32)[7:], len(messages), axis=0)  # orthogonal to the pool: uncovered
    cov = coverage_of(pool, vectors)
    assert cov.uncovered.all()
    _, clusters = uncovered_clusters(np.repeat(vectors, 2, axis=0) + 1e-3 * rng.standard_normal((2 * len(vectors), 8)),
                                     pd.concat([messages, messages], ignore_index=True), min_cluster_size=2,
                                     language=lambda t: "en")
    record_table(run, "09_messages", messages, title=f"messages {XSS}")
    record_table(run, "09_uncovered_clusters", clusters.assign(examples=clusters["examples"].str.join(" | ")))
    pool_frame = pd.DataFrame({"id": [f"p{i}" for i in range(20)], "text": [f"pool {i} {XSS}" for i in range(20)],
                               "category": ["coding"] * 20, "lang": ["en"] * 20})
    shown = map_rows(cov.uncovered, 100)
    fig = plot_traffic_map(rng.standard_normal((20, 2)), pool_frame, rng.standard_normal((len(shown), 2)),
                           messages.iloc[shown], cov.uncovered[shown], max_pool_points=12)
    record_figure(run, "09_traffic_map", fig)
    sources = [p[4] for tr in fig.data if tr.customdata is not None for p in tr.customdata]
    assert sources.count("pool") == 12 and sources.count("traffic: uncovered") == len(messages)
    for name, f in (("09_mix", plot_traffic_mix(log.mix("category"), by="category")),
                    ("09_cost", plot_traffic_cost(log.cost())), ("09_confidence", plot_live_confidence(log.confidence()))):
        record_figure(run, name, f)
    flag = drift(log.mix("tier"))
    record_metrics(run, "traffic", headline(log, uncovered_share=cov.share, flag=flag), replace=True)
    return messages, clusters, fig


def test_a_record_with_an_html_payload_is_shown_as_text(log, tmp_path):
    run = tmp_path / "2026-12-02"
    messages, clusters, fig = section(log, run)
    assert clusters["examples"].map(lambda e: XSS in e).any()  # the payload reached the tables as it was logged
    page = write_index(run, previous=False).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    for raw in RAW:
        assert raw not in page
    for js in (run / "figures").glob("*.js"):
        text = js.read_text(encoding="utf-8")
        assert not any(raw in text for raw in RAW), js.name
        assert "</script" not in text.lower()
    assert any("&lt;script&gt;alert(1)" in js.read_text() for js in (run / "figures").glob("09_traffic_map.js"))
    for frame in (messages, clusters):  # what the notebook page shows: pandas' HTML, escaped
        html = frame._repr_html_()
        assert "&lt;script&gt;" in html and not any(raw in html for raw in RAW)


def test_the_index_shows_the_drift_flag_both_ways(tmp_path):
    run = tmp_path / "2026-12-08"
    reasons = "strong share 16.0% on 2026-12-08 against 10.0% <b>"
    record_metrics(run, "traffic", {"drift": True, "drift_reasons": reasons, "latest_day": "2026-12-08",
                                    "uncovered_share": 0.04, "saving_vs_strong": 0.8}, replace=True)
    page = write_index(run, previous=False).read_text(encoding="utf-8")
    assert "<b>Traffic drift:</b> 2026-12-08: strong share 16.0%" in page and "10.0% &lt;b&gt;" in page
    assert "Traffic: cost saved against all-strong" in page and "80.0%" in page
    record_metrics(run, "traffic", {"drift": False, "drift_reasons": "none", "latest_day": "2026-12-08"}, replace=True)
    page = write_index(run, previous=False).read_text(encoding="utf-8")
    assert "Traffic drift" not in page and "Traffic: no drift." in page
    assert traffic_drift({}) is None and traffic_drift({"traffic": {"drift": False}})[0] is False


def test_headline_numbers_of_the_hand_made_log(log):
    got = headline(log, uncovered_share=0.25, flag=drift(log.mix("tier")))
    assert got["days"] == 2 and got["decisions"] == 5 and got["latest_day"] == "2026-12-02"
    assert got["abstain_rate"] == pytest.approx(0.2) and got["fallback_rate"] == pytest.approx(0.4)
    assert got["switch_rate"] == pytest.approx(0.5) and got["down_rate"] == pytest.approx(1 / 3)
    assert got["feedback"] == "3 rated decisions, 1 down" and got["uncovered_share"] == 0.25
    assert got["drift"] is True and "cheap share" in got["drift_reasons"]  # 1/3 -> 1/2 is more than 5 points
    json.dumps(got)


def test_read_table_gives_back_a_recorded_table(tmp_path):
    frame = pd.DataFrame({"bin_low": [0.0, 0.5], "share": [0.25, 0.75]})
    record_table(tmp_path, "06_reliability", frame)
    assert read_table(tmp_path, "06_reliability").equals(frame)
    assert read_table(tmp_path, "missing") is None and read_table(tmp_path, "../x") is None
