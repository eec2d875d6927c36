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
