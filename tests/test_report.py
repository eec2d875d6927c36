import json

import pytest

from workbench.report.record import record_figure, record_metrics, record_table
from workbench.report.index import find_previous, headline_rows, write_index
from tests.helpers import XSS, external_refs

OLD = {"evaluate": {"tier_accuracy": 0.80, "downgrade_rate": 0.10}, "pool": {"n": 1900}}
NEW = {"evaluate": {"tier_accuracy": 0.85, "downgrade_rate": 0.12, "vote": "distance"}, "pool": {"n": 1990}}


def test_record_metrics_merges_sections(tmp_path):
    record_metrics(tmp_path, "pool", {"n": 5})
    record_metrics(tmp_path, "evaluate", {"tier_accuracy": 0.5})
    data = record_metrics(tmp_path, "pool", {"languages": 3})
    assert data == {"pool": {"n": 5, "languages": 3}, "evaluate": {"tier_accuracy": 0.5}}
    assert json.loads((tmp_path / "metrics.json").read_text()) == data


def test_record_metrics_turns_numpy_and_nan_into_json(tmp_path):
    import numpy as np

    data = record_metrics(tmp_path, "s", {"a": np.float32(0.5), "b": np.int64(3), "c": float("nan")})
    assert data["s"] == {"a": 0.5, "b": 3, "c": None}


def test_headline_rows_show_change_and_judge_direction():
    rows = {r[0]: r for r in headline_rows(NEW, OLD)}
    label, value, previous, change, judgement = rows["Tier accuracy (leave-one-out, k-NN vote)"]
    assert (value, previous, change, judgement) == ("85.0%", "80.0%", "+5.0 pts", "better")
    assert rows["Downgrade rate"][3:] == ("+2.0 pts", "worse")
    assert rows["Pool size (messages)"][3:] == ("+90", "neutral")


def test_headline_rows_without_previous_have_no_change():
    assert all(r[2] == "" and r[3] == "" for r in headline_rows(NEW))


def test_find_previous_picks_the_newest_older_report(tmp_path):
    for name in ("2026-11-20", "2026-11-23", "2026-11-27", "scratch"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text("{}")
    (tmp_path / "2026-11-24").mkdir()  # no metrics.json: not a report
    (tmp_path / "2026-11-25").mkdir()
    assert find_previous(tmp_path / "2026-11-25").name == "2026-11-23"
    assert find_previous(tmp_path / "2026-11-20") is None


def test_index_compares_with_the_previous_report(tmp_path):
    (tmp_path / "2026-11-24").mkdir()
    (tmp_path / "2026-11-24" / "metrics.json").write_text(json.dumps(OLD))
    run = tmp_path / "2026-11-25"
    record_metrics(run, "evaluate", NEW["evaluate"])
    page = write_index(run).read_text()
    assert "Compared with: 2026-11-24" in page and "+5.0 pts" in page and "80.0%" in page


def test_index_escapes_text_from_data(tmp_path):
    import pandas as pd

    record_metrics(tmp_path, "run", {"status": "failed", "error": f"boom {XSS}"})
    record_metrics(tmp_path, "evaluate", {"backend": XSS})
    record_table(tmp_path, "groups", pd.DataFrame({"texts": [XSS]}), title=XSS)
    page = write_index(tmp_path, previous=False).read_text()
    assert "<script>window" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_index_reuses_the_recorded_figures_and_one_plotly_js_by_relative_path(tmp_path):
    import re

    import plotly.graph_objects as go

    from workbench.report.record import read_figure

    fig = go.Figure(go.Bar(y=[1, 2], text=["</script><script>window.__xss=1</script>"]))
    assert record_figure(tmp_path, "a", fig) is fig  # a notebook cell can record and show in one line
    record_figure(tmp_path, "b", go.Figure(go.Bar(y=[3])))
    path = write_index(tmp_path, previous=False)
    page = path.read_text()
    srcs = re.findall(r"<script src=['\"]([^'\"]+)['\"]", page)
    assert srcs.count("assets/plotly.min.js") == 1 and {"figures/a.js", "figures/b.js"} <= set(srcs)
    assert "window.__xss" not in page and '"data"' not in page  # no second copy of any figure
    assert (tmp_path / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    assert external_refs(path) == []
    back = read_figure(tmp_path / "figures" / "a.js")
    assert back["data"][0]["text"] == ["</script><script>window.__xss=1</script>"]
    assert "template" not in back["layout"]  # the default template ships once, in assets/template.js


def test_script_json_cannot_close_its_script_element():
    from workbench.report.record import script_json

    text = script_json({"t": "</script><script>x</script><!-- <br>"})
    assert "</" not in text and "<!--" not in text and json.loads(text)["t"] == "</script><script>x</script><!-- <br>"


def test_record_figure_rejects_a_path_as_name(tmp_path):
    import plotly.graph_objects as go

    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="figure name"):
        record_figure(tmp_path, "../evil", go.Figure())


def test_record_metrics_can_replace_a_section(tmp_path):
    record_metrics(tmp_path, "run", {"status": "failed", "error": "boom"})
    assert record_metrics(tmp_path, "run", {"status": "ok"}, replace=True)["run"] == {"status": "ok"}


def test_a_folder_gets_the_smallest_plotly_js_that_draws_all_its_figures(tmp_path):
    import json

    import plotly.graph_objects as go

    from workbench.report.html import CARTESIAN_TRACES, plotly_bundle, trace_types, write_assets

    record_figure(tmp_path, "a", go.Figure([go.Bar(y=[1]), go.Heatmap(z=[[1]]), go.Scatter(y=[1])]))
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {
        "application/vnd.plotly.v1+json": {"data": [{"type": "histogram", "x": [1]}], "layout": {}}}}]}]}
    (tmp_path / "01_x.ipynb").write_text(json.dumps(nb))
    assert trace_types(tmp_path) == {"bar", "heatmap", "scatter", "histogram"} <= CARTESIAN_TRACES
    small = write_assets(tmp_path) / "plotly.min.js"
    assert small.read_bytes() == plotly_bundle(tmp_path).read_bytes()
    assert b"plotly.js (cartesian - minified)" in small.read_bytes()[:200] and small.stat().st_size < 2_000_000
    # a big map's scattergl is not in the cartesian bundle: the folder gets the cartesian one with scattergl
    record_figure(tmp_path, "big", go.Figure(go.Scattergl(x=[1], y=[1])))
    gl = write_assets(tmp_path) / "plotly.min.js"
    assert b"plotly.js (cartesian + scattergl" in gl.read_bytes()[:200] and gl.stat().st_size < 2_000_000
    # any other trace type (a 3-D scatter here): the full plotly.js
    record_figure(tmp_path, "other", go.Figure(go.Scatter3d(x=[1], y=[1], z=[1])))
    full = write_assets(tmp_path) / "plotly.min.js"
    assert b"cartesian" not in full.read_bytes()[:200] and full.stat().st_size > 4_000_000
