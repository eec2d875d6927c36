"""Light report pages: shared assets by relative path, recorded figures shared, notebooks stored compactly."""
import json
import os

import nbformat
import pandas as pd
import plotly.graph_objects as go
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tests.helpers import XSS, external_refs
from workbench.plots.table import sortable_table, table_html
from workbench.report.html import PLOTLY_MIME, compact_notebook, notebook_to_html
from workbench.report.nightly import prune_reports
from workbench.report.record import record_figure


def executed_notebook(path, *figures):
    """A notebook whose cells show ``figures`` as plotly JSON (what the kernel stores), one cell each."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_code_cell("fig", execution_count=i + 1, outputs=[new_output(
        "execute_result", {PLOTLY_MIME: json.loads(fig.to_json()), "text/plain": "Figure"}, execution_count=i + 1)])
        for i, fig in enumerate(figures)]
    nbformat.write(nb, str(path))
    return path


def test_a_notebook_page_references_recorded_figures_and_embeds_the_others(tmp_path):
    recorded = record_figure(tmp_path, "shared", go.Figure(go.Bar(y=[1, 2], text=[XSS, "b"])))
    own = go.Figure(go.Scatter(y=[3, 4], text=["</script><script>window.__xss=2</script>"]))
    page = notebook_to_html(executed_notebook(tmp_path / "01_x.ipynb", recorded, own), tmp_path / "01_x.html")
    text = page.read_text()
    assert text.count('<script src="figures/shared.js">') == 1 and XSS not in text  # shared: no second copy
    assert text.count("class=\"wb-figure-data\"") == 1 and "</script><script>window.__xss" not in text
    assert '<script src="assets/plotly.min.js">' in text and "plotly.js v" not in text  # one plotly.js per folder
    assert external_refs(page) == []
    for asset in ("plotly.min.js", "figures.js", "explore.js", "table.js", "template.js", "notebook.css"):
        assert (tmp_path / "assets" / asset).exists(), asset
    assert len(text) < 20_000  # no inlined JupyterLab style sheets either


def test_compact_notebook_keeps_the_content_and_drops_the_indentation(tmp_path):
    fig = go.Figure(go.Scatter(x=list(range(300)), y=list(range(300)), customdata=[[i, "t"] for i in range(300)]))
    path = executed_notebook(tmp_path / "nb.ipynb", fig)
    before, size = nbformat.read(str(path), as_version=4), path.stat().st_size
    compact_notebook(path)
    assert nbformat.read(str(path), as_version=4) == before
    assert path.stat().st_size < size / 2


def test_tables_are_sortable_escaped_and_complete():
    frame = pd.DataFrame({"id": [f"m{i}" for i in range(70)], "text": [XSS] * 70, "p": [i / 70 for i in range(70)]})
    page = table_html(frame, title=XSS)
    assert page.count("<tr>") == 71 and "class='wb-table wb-sortable'" in page  # every row, no truncation
    assert "<script>window" not in page and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert "data-sort='0.5'" in page  # numbers sort by value, not by their text
    shown = sortable_table(frame)._repr_html_()
    assert "wbSortable" in shown and shown.count("<tr>") == 71


def _report(root, name):
    (root / name).mkdir()
    (root / name / "metrics.json").write_text("{}")
    return root / name


def test_prune_keeps_the_newest_and_never_what_latest_points_to(tmp_path):
    from workbench.report.nightly import update_latest

    dates = [f"2026-01-{d:02d}" for d in range(1, 8)]
    for d in dates:
        _report(tmp_path, d)
    (tmp_path / "scratch").mkdir()  # not a report folder: never touched
    (tmp_path / "2026-01-08").mkdir()  # no metrics.json: not a report either
    update_latest(tmp_path, tmp_path / "2026-01-02")
    deleted = prune_reports(tmp_path, 3)
    assert sorted(p.name for p in deleted) == ["2026-01-01", "2026-01-03", "2026-01-04"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-01-02", "2026-01-05", "2026-01-06", "2026-01-07",
                                                          "2026-01-08", "latest", "scratch"]
    assert (tmp_path / "latest").resolve() == (tmp_path / "2026-01-02").resolve()


def test_keep_must_be_positive(tmp_path, capsys):
    from workbench.cli import main
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="keep must be an integer >= 1; got 0"):
        prune_reports(tmp_path, 0)
    with pytest.raises(SystemExit) as e:
        main(["nightly", "--output-dir", str(tmp_path), "--keep", "0"])
    assert e.value.code == 2 and "--keep: must be an integer >= 1; got '0'" in capsys.readouterr().err


def test_notebook_setup_is_static_when_the_nightly_says_so(monkeypatch, tmp_path, capsys):
    import warnings

    from workbench.report import notebook

    monkeypatch.setenv(notebook.STATIC_ENV, "1")
    ctx = notebook.setup(output_dir=tmp_path)
    assert ctx.live is False and ctx.progress is False
    warnings.warn("something odd", UserWarning)
    err = capsys.readouterr().err
    assert "UserWarning: something odd" in err and os.sep + "tests" + os.sep not in err  # no path of this machine
    monkeypatch.delenv(notebook.STATIC_ENV)
    assert notebook.setup(output_dir=tmp_path).live is True
