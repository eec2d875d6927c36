"""The map explorer, driven from Python (its browser side is tested in tests/test_jupyterlab.py)."""
import numpy as np
import pandas as pd
import pytest

from tests.helpers import XSS
from workbench import plots
from workbench.plots.explorer import map_table

FRAME = pd.DataFrame({
    "id": ["a", "b", "c", "d", "e"],
    "text": [XSS, "sort a list in rust", "hello there", "write a sort function", "bonjour"],
    "category": ["coding", "coding", "casual", "coding", "casual"],
    "tier": ["strong", "strong", "cheap", "strong", "cheap"],
    "lang": ["en", "en", "en", "de", "fr"],
    "source": ["generated", "generated", "template", "generated", "real"],
    "predicted": ["coding", "casual", "casual", "coding", "coding"],
    "predicted_tier": ["strong", "cheap", "cheap", "strong", "strong"],
    "error": ["correct", "downgrade", "correct", "correct", "upgrade"],
})
COORDS = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 2]], float)
NEIGHBORS = np.array([[1, 3], [0, 3], [4, 1], [0, 1], [2, 0]])
SIMS = np.array([[0.9, 0.5], [0.9, 0.4], [0.8, 0.2], [0.5, 0.4], [0.8, 0.3]])


@pytest.fixture
def fig():
    return plots.plot_map(COORDS, FRAME, neighbors=NEIGHBORS, similarities=SIMS, title="t")


def test_the_map_is_the_explorers_one_source_of_data(fig):
    table = map_table(fig)
    assert table["id"].tolist() == ["a", "b", "c", "d", "e"] and table.loc[0, "text"] == XSS  # unescaped, unwrapped
    assert table.loc[1, ["predicted", "predicted_tier", "error"]].tolist() == ["casual", "cheap", "downgrade"]
    assert table.loc[4, "neighbors"] == [2, 0] and table.loc[3, ["x", "y"]].tolist() == [1.0, 1.0]


def test_without_widgets_it_returns_the_map_as_the_widget_would_start(fig):
    assert plots.explore_map(fig, live=False) is fig
    errors = plots.explore_map(fig, live=False, errors_only=True)
    shown = map_table(errors)
    assert shown["id"].tolist() == ["b", "e"] and shown.index.tolist() == [1, 4]  # rows keep the pool's numbers
    assert shown.loc[1, "neighbors"] == [0, 3]  # neighbours off the map stay listed (the panel says so)
    point = next(cd for t in errors.data if t.customdata for cd in t.customdata if cd[0] == 1)
    assert point[8] == "2/2"  # agreement still counted over the whole pool


@pytest.fixture
def explorer(fig):
    pytest.importorskip("ipywidgets")
    pytest.importorskip("anywidget")
    ex = plots.explore_map(fig)
    ex._build()
    return ex


def test_select_fills_the_selection_and_its_table(explorer):
    assert explorer.select(["a", "d", "nope"]) == 2
    sel = explorer.selection
    assert sel["id"].tolist() == ["a", "d"] and list(sel.columns[:3]) == ["id", "text", "category"]
    assert "&lt;script&gt;" in explorer.table.value and "<script>window" not in explorer.table.value
    assert explorer.count.value == "2 selected"
    coding = next(t for t in explorer.figure.data if t.name == "coding")
    assert list(coding.selectedpoints) == [0, 2]  # highlighted on the map (a, d are coding's 1st and 3rd points)
    explorer.selection = ["c"]
    assert explorer.selection["id"].tolist() == ["c"]


def test_a_lasso_in_the_browser_reaches_the_selection(explorer):
    from plotly.callbacks import Points

    traces = explorer._data_traces
    for t in traces:  # what plotly sends: every trace in order, with the indices of its selected points
        inds = [1] if explorer.figure.data[t].name == "coding" else [0]
        explorer._on_selection(explorer.figure.data[t], Points(point_inds=inds, xs=[], ys=[], trace_name="",
                                                               trace_index=t))
    assert sorted(explorer.selection["id"]) == ["b", "c"]


def test_search_filters_and_colouring(explorer):
    explorer.find("SORT")
    assert explorer.selection["id"].tolist() == ["b", "d"]
    explorer.find("e")  # an exact id wins over texts that contain it
    assert explorer.selection["id"].tolist() == ["e"]
    explorer.errors_box.value = True
    assert sorted(map_table_shown(explorer)) == ["b", "e"] and explorer.selection.empty
    explorer.filters["lang"].value = "fr"
    assert map_table_shown(explorer) == ["e"]
    explorer.color_menu.value = "lang"
    casual, coding = (next(t for t in explorer.figure.data if t.name == n) for n in ("casual", "coding"))
    assert len(casual.x) == 1 and len(coding.x) == 0 and explorer.figure.layout.legend2.visible
    shown_keys = [t.name for t in explorer.figure.data if t.legend == "legend2" and t.showlegend]
    assert shown_keys == ["de", "en", "fr"]


def map_table_shown(explorer):
    return [explorer.points.at[r, "id"] for t in explorer._data_traces for r in explorer._shown[t]]


def test_neighbours_and_the_review_file(explorer, tmp_path):
    from workbench.analysis.review import read_review_file

    explorer.show_neighbours(1)
    assert "Nearest neighbours of b" in explorer.neighbours.value and "&lt;script&gt;" in explorer.neighbours.value
    explorer.select(["a", "b"])
    path = explorer.write_review(tmp_path / "review.jsonl")
    back = read_review_file(path)
    assert back["id"].tolist() == ["a", "b"] and back.loc[0, "text"] == XSS and back.loc[1, "error"] == "downgrade"
    assert "wrote 2 message(s)" in explorer.status.value


def test_the_static_map_keeps_the_colouring_it_was_made_with():
    fig = plots.plot_map(COORDS, FRAME, neighbors=NEIGHBORS, similarities=SIMS, color="error")
    errors = plots.explore_map(fig, live=False, errors_only=True)
    menu = errors.layout.updatemenus[0]
    assert menu.buttons[menu.active].label == "colour: error"


def test_the_review_file_box_reads_relative_to_the_project_root(explorer, monkeypatch, tmp_path):
    from workbench import config

    assert explorer.path_box.value == "data/interim/review/selection.jsonl"  # no path of this machine on screen
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    explorer.select(["c"])
    explorer.path_box.value = "picked/sel.jsonl"
    assert explorer.write_review() == tmp_path / "picked" / "sel.jsonl"


def relayout(explorer, selections):
    """What JupyterLab sends the kernel after a mouse drag: the outline plotly drew, as a relayout."""
    explorer.figure._js2py_relayout = {"relayout_data": {"selections": selections}, "source_view_id": "view"}


def test_a_box_drawn_with_the_mouse_selects_the_points_inside_it_in_the_kernel(explorer):
    relayout(explorer, [{"type": "rect", "xref": "x", "yref": "y", "x0": -0.5, "x1": 1.5, "y0": 0.5, "y1": 1.5}])
    assert sorted(explorer.selection["id"]) == ["c", "d"] and explorer.count.value == "2 selected"
    # a lasso (an SVG path) around a and b only
    relayout(explorer, [{"type": "path", "xref": "x", "yref": "y", "path": "M-0.5,-0.5L1.5,-0.5L1.5,0.5L-0.5,0.5Z"}])
    assert sorted(explorer.selection["id"]) == ["a", "b"]
    relayout(explorer, [])  # a double-click clears the outline: the selection goes too
    assert explorer.selection.empty and explorer.count.value == "nothing selected"


def test_a_search_or_a_python_selection_removes_the_old_outline(explorer):
    relayout(explorer, [{"type": "rect", "xref": "x", "yref": "y", "x0": -0.5, "x1": 1.5, "y0": 0.5, "y1": 1.5}])
    explorer.find("bonjour")
    assert not explorer.figure.layout.to_plotly_json().get("selections") and explorer.selection["id"].tolist() == ["e"]


def test_writing_refuses_an_empty_selection_and_an_existing_file(explorer, tmp_path):
    from workbench.errors import WorkbenchError

    target = tmp_path / "review.jsonl"
    explorer.select([])
    with pytest.raises(WorkbenchError, match="nothing is selected"):
        explorer.write_review(target)
    assert not target.exists()
    explorer.write_button.click()  # the button says so instead of writing an empty file
    assert explorer.status.value.startswith("refused: nothing is selected")
    explorer.select(["a"])
    explorer.write_review(target)
    explorer.select(["b", "c"])
    with pytest.raises(WorkbenchError, match="exists: tick 'overwrite'"):
        explorer.write_review(target)
    assert target.read_text(encoding="utf-8").count("\n") == 1
    explorer.overwrite.value = True
    explorer.write_review(target)
    assert target.read_text(encoding="utf-8").count("\n") == 2


def test_a_label_edit_on_the_map_reaches_a_merged_copy_of_the_pool(explorer, tmp_path, capsys):
    """Map selection -> relabel -> review file -> workbench merge --edits -> a new pool folder with provenance."""
    import json

    from workbench.cli import main
    from workbench.dataset.pool import load_pool

    pool = tmp_path / "pool"
    pool.mkdir()
    rows = [{k: FRAME.at[i, k] for k in ("id", "text", "category", "lang", "source")} | {"label_source": "author"}
            for i in range(len(FRAME))]
    (pool / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]), encoding="utf-8")
    (pool / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[3:]), encoding="utf-8")
    before = {f.name: f.read_bytes() for f in pool.iterdir()}
    explorer.edits_file = tmp_path / "edits.jsonl"
    relayout(explorer, [{"type": "rect", "xref": "x", "yref": "y", "x0": 0.5, "x1": 2.5, "y0": -0.5, "y1": 2.5}])
    assert sorted(explorer.selection["id"]) == ["b", "d", "e"]
    explorer.label_menu.value, explorer.note.value = "casual", "greetings, not code"
    explorer.relabel_button.click()
    assert "recorded 2 edit(s) to casual" in explorer.status.value  # e is casual already
    edits = [json.loads(ln) for ln in explorer.edits_file.read_text(encoding="utf-8").splitlines()]
    assert [(e["id"], e["old_label"], e["new_label"], e["note"]) for e in edits] == [
        ("b", "coding", "casual", "greetings, not code"), ("d", "coding", "casual", "greetings, not code")]
    assert all(e["who"] and e["when"].endswith("Z") for e in edits)

    out = tmp_path / "merged"
    assert main(["merge", "--edits", str(explorer.edits_file), "--pool-dir", str(pool), "--out", str(out)]) in (0, None)
    said = capsys.readouterr().out
    assert "applied 2 label edit(s)" in said and "coding -> casual: 2" in said and "a.jsonl: 1 line(s)" in said
    assert {f.name: f.read_bytes() for f in pool.iterdir()} == before  # never in place
    merged = load_pool(out).frame.set_index("id")
    assert merged.loc[["b", "d"], "category"].tolist() == ["casual", "casual"]
    assert merged.loc["a", "category"] == "coding" and len(merged) == 5
    b = json.loads((out / "a.jsonl").read_text(encoding="utf-8").splitlines()[1])
    assert b["label_source"] == "review" and b["review"]["old_label"] == "coding" and b["review"]["note"]
    # a second merge into the same folder, or after the pool changed, is refused with the reason
    assert main(["merge", "--edits", str(explorer.edits_file), "--pool-dir", str(pool), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    rows[1]["category"] = "analysis"
    (pool / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]), encoding="utf-8")
    assert main(["merge", "--edits", str(explorer.edits_file), "--pool-dir", str(pool),
                 "--out", str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err
    assert "pool changed since" in err and "'b' is labelled 'analysis'" in err and not (tmp_path / "again").exists()


def test_one_colour_control_and_legends_that_follow_it(explorer, fig):
    assert fig.layout.updatemenus and not explorer.figure.layout.updatemenus  # the widget's dropdown only
    explorer.color_menu.value = "error"
    assert explorer.figure.layout.legend2.title.text == "colour: error"
    assert "colour: error" in explorer.figure.layout.legend.title.text
    explorer.color_menu.value = "category"
    assert explorer.figure.layout.legend.title.text.startswith("colour: category")
    # the report's map: every colour button retitles both legends
    for button in fig.layout.updatemenus[0].buttons:
        field = button.label.split(": ", 1)[1]
        assert field in button.args[1]["legend.title.text"] and button.args[1]["legend2.title.text"] == f"colour: {field}"
