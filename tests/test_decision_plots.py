import numpy as np
import pandas as pd

from workbench import plots as dp
from workbench.decisions.operating_point import OperatingPoint, abstain_curve
from workbench.core.policy import DecisionPolicy

EVIL = "<script>alert(1)</script>"
CURVE = abstain_curve([0.9, 0.2, 0.6, 0.4], [2, 2, 0, 1], [2, 1, 0, 2])
POINT = OperatingPoint(DecisionPolicy("vote", threshold=0.5), 1.0, 0.5, 0.0, 0.0, 1.0, 1.0, True)


def _html(fig):
    return fig.to_html(include_plotlyjs=False, full_html=False)


def test_abstain_curve_marks_the_operating_point_and_its_legend_explains_both_markers():
    fig = dp.plot_abstain_curve(CURVE, point=POINT)
    names = [t.name for t in fig.data]
    assert names[:2] == ["tier accuracy (answered)", "downgrade rate (all traffic)"]
    assert names[2] == names[3] == "operating point (vote, threshold 0.5)"
    assert fig.data[2].x[0] == fig.data[3].x[0] == 0.5
    # one legend entry (a click hides both stars), and the stars look alike, so that entry explains both
    assert fig.data[2].legendgroup == fig.data[3].legendgroup and fig.data[3].showlegend is False
    assert fig.data[2].marker.to_plotly_json() == fig.data[3].marker.to_plotly_json()


def test_savings_plot_escapes_strategy_names():
    table = pd.DataFrame({"strategy": ["always strong", EVIL], "cost_per_1k": [10.0, 3.0],
                          "saved_vs_strong": [0.0, 0.7], "misrouting_cost": [0.0, 0.2]})
    curve = pd.DataFrame({"abstain_rate": [0.0, 0.1], "saved_vs_strong": [0.7, 0.65]})
    fig = dp.plot_savings(table, curve=curve)
    assert len(fig.data) == 2 and EVIL not in _html(fig)


def test_baselines_plot_has_one_bar_group_per_metric():
    table = pd.DataFrame({"method": ["knn", "logistic_regression"], "tier_accuracy": [0.86, 0.9],
                          "category_accuracy": [0.8, 0.88], "downgrade_rate": [0.05, 0.04], "latency_ms": [0.1, 0.01]})
    fig = dp.plot_baselines(table)
    assert len(fig.data) == 3 and list(fig.data[0].x) == ["knn", "logistic_regression"]


def test_pool_size_curve_has_a_line_per_strategy():
    t = pd.DataFrame({"strategy": ["random", "random", "diverse", "diverse"], "per_category": [5, 10, 5, 10],
                      "pool_size": [35, 70, 35, 70], "tier_accuracy": [0.6, 0.7, 0.62, 0.69],
                      "tier_accuracy_std": [0.01] * 4})
    fig = dp.plot_pool_size_curve(t)
    assert [tr.name for tr in fig.data] == ["random", "diverse"]


def test_robustness_and_review_queue_escape_message_text():
    rob = pd.DataFrame({"perturbation": ["original", "greeting"], "tier_accuracy": [0.9, 0.85],
                        "tier_changed": [0.0, 0.1], "example": ["x", "hi! " + EVIL]})
    queue = pd.DataFrame({"id": ["m1"], "text": [EVIL], "category": ["coding"], "suggested": ["analysis"],
                          "p_given": [0.1], "p_suggested": [0.8],
                          "neighbors": [[{"id": "m2", "text": EVIL, "category": "analysis", "similarity": 0.9}]]})
    for fig in (dp.plot_robustness(rob), dp.plot_review_queue(queue)):
        html = _html(fig)
        assert EVIL not in html and "&lt;script&gt;" in html
    assert np.isclose(dp.plot_robustness(rob).data[0].y[1], 0.85)
