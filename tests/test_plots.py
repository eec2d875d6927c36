import numpy as np
import pandas as pd

from workbench import plots
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


def test_plot_map_has_one_trace_per_value_per_colour_field_and_a_dropdown():
    fig = plots.plot_map(COORDS, FRAME, neighbors=NEIGHBORS, similarities=SIMS)
    names = [t.name for t in fig.data]
    # category (casual, coding) + tier (cheap, strong) + source (generated, template) + lang (de, en)
    assert names == ["casual", "coding", "cheap", "strong", "generated", "template", "de", "en"]
    assert [t.visible for t in fig.data[:2]] == [True, True] and not any(t.visible for t in fig.data[2:])
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["colour: category", "colour: tier", "colour: source", "colour: lang"]
    assert buttons[1].args[0]["visible"] == [False, False, True, True, False, False, False, False]


def test_plot_map_draws_near_duplicate_links_always_visible():
    fig = plots.plot_map(COORDS, FRAME, pairs=(np.array([0]), np.array([1])), color_by=("category",))
    link = fig.data[0]
    assert link.mode == "lines" and list(link.x[:2]) == [0, 1]
    assert all(b.args[0]["visible"][0] for b in fig.layout.updatemenus[0].buttons)


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
