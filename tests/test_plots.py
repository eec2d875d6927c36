import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st

from workbench import plots
from workbench.plots.pool import legend_title
from workbench import plots as plots_eval

FRAME = pd.DataFrame({
    "id": ["a", "b", "c", "d"],
    "text": ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "hello there", "write a sort function"],
    "category": ["coding", "coding", "casual", "coding"],
    "tier": ["strong", "strong", "cheap", "strong"],
    "lang": ["en", "en", "en", "de"],
    "source": ["generated", "generated", "template", "generated"],
})
COORDS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float)
NEIGHBORS = np.array([[1, 3], [0, 3], [0, 1], [0, 1]])
SIMS = np.array([[0.9, 0.5], [0.9, 0.4], [0.3, 0.2], [0.5, 0.4]])
CONFUSION = pd.DataFrame([[8, 2], [1, 9]], index=["cheap", "strong"], columns=["cheap", "strong"])


def test_hover_text_escapes_message_html():
    text = plots.hover_text(FRAME, NEIGHBORS, SIMS)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text[0] and "<script>" not in text[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in text[0]  # neighbour text is escaped too
    assert "<img" not in "".join(text)


ROUTED = FRAME.assign(predicted=["coding", "casual", "casual", "coding"], predicted_tier=["strong", "cheap", "cheap", "strong"],
                      error=["correct", "downgrade", "correct", "correct"])


def _points(fig):
    """customdata rows of every data trace by row, with the trace's category."""
    meta = fig.layout.meta["workbench"]
    out = {}
    for t, cat in meta["traces"].items():
        for cd in fig.data[int(t)].customdata:
            out[cd[0]] = dict(zip(meta["columns"], cd), category=cat)
    return out


def test_plot_map_carries_each_point_once_with_one_trace_per_category():
    fig = plots.plot_map(COORDS, ROUTED, neighbors=NEIGHBORS, similarities=SIMS)
    data = [t for t in fig.data if t.legend != "legend2"]
    assert [t.name for t in data] == ["casual", "coding"]
    assert sorted(p for t in data for p in (c[0] for c in t.customdata)) == [0, 1, 2, 3]  # every point, once
    # no shared legendgroup: a click hides one category, a double-click isolates it (plotly's default for traces)
    assert all(t.legendgroup is None for t in data)


def test_plot_map_colourings_switch_marker_colours_not_traces():
    fig = plots.plot_map(COORDS, ROUTED, neighbors=NEIGHBORS, similarities=SIMS)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["colour: category", "colour: tier", "colour: source", "colour: lang",
                                          "colour: error"]
    data = [i for i, t in enumerate(fig.data) if t.legend != "legend2"]
    for b in buttons:
        restyle, relayout, traces = b.args
        assert b.method == "update" and set(data) <= set(traces)
        assert "x" not in restyle and "customdata" not in restyle  # the data stays where it is
    lang = buttons[3].args[0]
    coding = list(buttons[3].args[2]).index(data[1])
    assert fig.data[data[1]].name == "coding" and lang["marker.color"][coding] == [1, 1, 0]  # en, en, de: codes
    assert buttons[3].args[1] == {"legend2.visible": True, "legend2.title.text": "colour: lang",
                                  "legend.title.text": legend_title("lang")}
    shown = [fig.data[t].name for t, on in zip(buttons[3].args[2], lang["showlegend"]) if on and t not in data]
    assert shown == ["de", "en"]  # the colour key of the chosen field


def test_plot_map_customdata_holds_the_fields_the_report_script_reads():
    fig = plots.plot_map(COORDS, ROUTED, neighbors=NEIGHBORS, similarities=SIMS)
    p = _points(fig)
    meta = fig.layout.meta["workbench"]
    assert p[1]["category"] == "coding" and meta["categories"][p[1]["predicted"]] == "casual"
    assert meta["errors"][p[1]["error"]] == "downgrade" and "routed: casual (cheap), downgrade" in p[1]["routed"]
    assert p[0]["routed"] == "" and p[1]["neighbors"] == [0, 3] and p[1]["similarities"] == [0.9, 0.4]
    assert p[2]["agree"] == "0/2" and p[3]["agree"] == "2/2"
    assert "&lt;script&gt;" in p[0]["text"] and "<script>" not in str(fig.to_plotly_json()["data"])
    assert meta["tiers"]["casual"] == "cheap"


def test_plot_map_draws_near_duplicate_links_always_visible():
    fig = plots.plot_map(COORDS, FRAME, pairs=(np.array([0]), np.array([1])), color_by=("category", "lang"))
    link = fig.data[0]
    assert link.mode == "lines" and list(link.x[:2]) == [0, 1]
    assert all(0 not in b.args[2] for b in fig.layout.updatemenus[0].buttons)  # no colouring touches the links


def test_plot_map_can_open_on_another_colouring():
    fig = plots.plot_map(COORDS, ROUTED, color="error")
    assert fig.layout.updatemenus[0].active == 4 and fig.layout.legend2.visible
    assert [t.name for t in fig.data if t.legend == "legend2" and t.showlegend] == ["correct", "downgrade"]


def test_plot_map_uses_webgl_only_for_big_maps():
    assert fig_type(plots.plot_map(COORDS, FRAME)) == "scatter"
    assert fig_type(plots.plot_map(COORDS, FRAME, webgl=True)) == "scattergl"


def fig_type(fig):
    return fig.data[0].type


def test_hover_text_is_wrapped_and_the_wrap_is_reversible():
    from workbench.plots._base import wrap

    text = "word " * 50 + "无空格的中文句子" * 20
    wrapped = wrap(text, 40)
    assert all(len(line) <= 40 for line in wrapped.split("<br>")) and wrapped.replace("<br>", "") == text


def test_plot_set_comparison_has_one_panel_per_set():
    fig = plots.plot_set_comparison(COORDS, FRAME, np.array(["templates", "templates", "written", "written"]))
    assert [a.text for a in fig.layout.annotations] == ["templates (2)", "written (2)"]
    assert {t.xaxis for t in fig.data} == {"x", "x2"}


def test_plot_confusion_annotates_counts_and_row_percent():
    fig = plots_eval.plot_confusion(CONFUSION)
    assert fig.data[0].text[0][0] == "8<br>80%" and fig.data[0].text[1][1] == "9<br>90%"
    assert np.allclose(np.array(fig.data[0].z).sum(axis=1), 1)


def test_plot_per_category_colours_bars_by_tier():
    per = pd.DataFrame({"tier": ["cheap", "strong"], "n": [3, 4], "accuracy": [0.5, 1.0], "tier_accuracy": [1.0, 1.0]},
                       index=pd.Index(["casual", "coding"], name="category"))
    fig = plots_eval.plot_per_category(per)
    assert list(fig.data[0].x) == ["casual (cheap)", "coding (strong)"]
    assert fig.data[0].marker.color[0] != fig.data[0].marker.color[1]


def test_plot_rates_shows_downgrades_and_upgrades_per_evaluation():
    fig = plots_eval.plot_rates({"LOO": {"downgrade_rate": 0.1, "upgrade_rate": 0.05},
                                 "LDGO": {"downgrade_rate": 0.2, "upgrade_rate": 0.07}})
    assert [list(t.y) for t in fig.data] == [[0.1, 0.2], [0.05, 0.07]]


def test_plot_sweep_draws_one_line_per_vote_rule_and_centering():
    table = pd.DataFrame({"k": [1, 3, 1, 3], "vote": ["majority"] * 2 + ["distance"] * 2, "center": [False] * 4,
                          "tier_accuracy": [0.7, 0.8, 0.75, 0.85]})
    fig = plots_eval.plot_sweep(table)
    assert sorted(t.name for t in fig.data) == ["distance, raw", "majority, raw"]
    assert "85.0%" in fig.layout.annotations[0].text


def test_plot_group_accuracy_keeps_the_given_order():
    table = pd.DataFrame({"n": [5, 9], "accuracy": [0.5, 0.6], "tier_accuracy": [0.7, 0.8]}, index=["long", "short"])
    fig = plots_eval.plot_group_accuracy(table, order=["short", "long"])
    assert list(fig.data[0].x) == ["short (n=9)", "long (n=5)"]


def test_rare_values_share_one_other_colour_and_no_colour_repeats():
    from workbench.plots._base import OTHER_COLOR, color_key

    langs = [f"l{i:02d}" for i in range(28) for _ in range(28 - i)]  # 28 languages, l00 the most common
    key, names = color_key(langs, max_colors=12)
    assert len(key) == 12 and len(set(key.values())) == 12
    assert key["other (17 values)"] == OTHER_COLOR and names["l27"] == "other (17 values)" and names["l00"] == "l00"
    fig = plots.plot_counts(pd.DataFrame({"category": ["a"] * len(langs), "lang": langs}), color="lang")
    colours = [t.marker.color for t in fig.data]
    assert len(fig.data) == 12 and len(set(colours)) == 12 and fig.data[-1].name.startswith("other")


def test_percentage_axes_never_repeat_a_tick_label():
    from workbench.plots._base import PCT_AXIS

    table = pd.DataFrame({"k": [1, 3], "vote": ["majority"] * 2, "center": [False] * 2, "tier_accuracy": [0.855, 0.861]})
    assert plots_eval.plot_sweep(table).layout.yaxis.tickformat == PCT_AXIS == ".2~%"


def test_per_category_legend_gives_each_meaning_its_own_swatch():
    per = pd.DataFrame({"tier": ["cheap", "strong"], "n": [3, 4], "accuracy": [0.5, 1.0], "tier_accuracy": [1.0, 1.0]},
                       index=pd.Index(["casual", "coding"], name="category"))
    fig = plots_eval.plot_per_category(per)
    shown = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in shown] == ["category accuracy", "tier accuracy", "tier: cheap", "tier: strong"]
    swatches = [(t.marker.color, t.marker.pattern.shape) for t in shown]
    assert len(set(swatches)) == len(swatches)  # no two legend entries look alike


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=25))
def test_every_value_with_30_or_more_points_gets_its_own_colour(sizes):
    """Colour by language: a language big enough for the slice flag never hides in "other"."""
    from workbench.plots._base import PALETTE, color_key

    values = [f"v{i:02d}" for i, n in enumerate(sizes) for _ in range(n)]
    key, names = color_key(values, max_colors=12, min_count=30)
    big = [f"v{i:02d}" for i, n in enumerate(sizes) if n >= 30]
    if len(big) < len(PALETTE):
        assert all(names[v] == v for v in big)
    assert len(set(key.values())) == len(key) <= len(PALETTE) + 1  # no colour twice; "other" is its own grey
    assert set(names.values()) <= set(key)


def test_plot_threshold_curve_draws_each_kind_per_set_in_two_panels_with_the_shipped_threshold():
    from workbench.plots._base import PCT_AXIS

    curve = pd.DataFrame({f"{k}_{r}": [0.9, 0.92, 0.95] for k in ("fresh", "follow_up", "all")
                          for r in ("tier_accuracy", "downgrade_rate")} | {"follow_up_share": [0.6, 0.5, 0.4]},
                         index=pd.Index([0.4, 0.5, 0.6], name="threshold"))
    fig = plots.plot_threshold_curve({"<b>dev</b>": curve, "report": curve}, shipped=0.5)
    assert len(fig.data) == 2 * 3 * 2 and sum(t.showlegend for t in fig.data) == 6
    assert all("<b>" not in t.name and "<b>" not in t.hovertemplate for t in fig.data)
    assert {t.xaxis for t in fig.data} == {"x", "x2"} and len(fig.layout.shapes) == 2
    assert fig.layout.yaxis.tickformat == fig.layout.yaxis2.tickformat == PCT_AXIS
