"""Plots of the decision analyses: one function per concern, each returning a plotly Figure.

They never show or save (the notebook decides). Message text and every
other user-supplied label is HTML-escaped before it reaches a hover.
"""
from __future__ import annotations

import numpy as np

from ._base import PCT_AXIS, esc as _esc, go as _go

__all__ = ["plot_abstain_curve", "plot_savings", "plot_baselines", "plot_pool_size_curve", "plot_robustness",
           "plot_review_queue"]


def _thin(x, step):
    """Indices keeping one point per ``step`` of ``x`` (and the last): a curve of thousands of thresholds
    draws the same with a few hundred points, at a fraction of the figure's size."""
    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return np.arange(len(x))
    _, first = np.unique(np.floor(x / step), return_index=True)
    return np.union1d(first, [len(x) - 1])


def plot_abstain_curve(curve, *, point=None, title="Accuracy and downgrades vs abstain rate", step=0.0025):
    """Tier accuracy (answered messages) and downgrade rate vs abstain rate.

    Parameters
    ----------
    curve : dict of arrays or DataFrame
        From :func:`workbench.operating_point.abstain_curve`.
    point : OperatingPoint, optional
        Marked on both curves.
    step : float
        One point per this much abstain rate is drawn (0: every threshold).
    """
    go = _go()
    from plotly.subplots import make_subplots

    keep = _thin(curve["abstain_rate"], step) if step else slice(None)
    a = np.asarray(curve["abstain_rate"])[keep]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=a, y=np.asarray(curve["answered_tier_accuracy"])[keep], name="tier accuracy (answered)",
                             mode="lines", hovertemplate="abstain %{x:.1%}<br>accuracy %{y:.1%}<extra></extra>"))
    fig.add_trace(go.Scatter(x=a, y=np.asarray(curve["downgrade_rate"])[keep], name="downgrade rate (all traffic)",
                             mode="lines", line={"dash": "dot"},
                             hovertemplate="abstain %{x:.1%}<br>downgrades %{y:.1%}<extra></extra>"), secondary_y=True)
    if point is not None:
        # one legend entry for both stars (a click hides both), named with the fitted threshold
        threshold = point.policy.threshold
        label = _esc(f"operating point ({point.policy.name}"
                     + (f", threshold {threshold:.3g})" if threshold is not None else ")"))
        fig.add_trace(go.Scatter(x=[point.abstain_rate], y=[point.answered_tier_accuracy], mode="markers",
                                 marker={"size": 13, "symbol": "star", "color": "#222"}, name=label, legendgroup="point",
                                 hovertemplate="operating point<br>abstain %{x:.1%}<br>accuracy %{y:.1%}<extra></extra>"))
        fig.add_trace(go.Scatter(x=[point.abstain_rate], y=[point.downgrade_rate], mode="markers",
                                 marker={"size": 13, "symbol": "star", "color": "#222"}, name=label, legendgroup="point",
                                 showlegend=False,
                                 hovertemplate="operating point<br>abstain %{x:.1%}<br>downgrades %{y:.1%}<extra></extra>"),
                      secondary_y=True)
    fig.update_layout(title=_esc(title), xaxis_title="abstain rate", xaxis_tickformat=PCT_AXIS)
    fig.update_yaxes(title_text="tier accuracy", tickformat=PCT_AXIS, secondary_y=False)
    fig.update_yaxes(title_text="downgrade rate", tickformat=PCT_AXIS, secondary_y=True)
    return fig


def plot_savings(table, *, curve=None, title="Cost per 1,000 messages"):
    """Cost of each strategy (bars, saved share in the hover); optionally the router's savings curve.

    Parameters
    ----------
    table : DataFrame from :func:`workbench.savings.savings_table`
    curve : DataFrame from :func:`workbench.savings.savings_curve`, optional
        Drawn as a second panel: saved share vs abstain rate.
    """
    go = _go()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2 if curve is not None else 1,
                        subplot_titles=("by strategy", "router: saved vs abstain rate")[:2 if curve is not None else 1])
    names = [_esc(s) for s in table["strategy"]]
    fig.add_trace(go.Bar(x=names, y=table["cost_per_1k"], name="cost per 1,000 messages",
                         customdata=np.c_[table["saved_vs_strong"], table["misrouting_cost"]],
                         hovertemplate="%{x}<br>cost %{y:.3f}<br>saved vs always-strong %{customdata[0]:.1%}"
                                       "<br>misrouting adds %{customdata[1]:.3f}<extra></extra>"), row=1, col=1)
    if curve is not None:
        fig.add_trace(go.Scatter(x=curve["abstain_rate"], y=curve["saved_vs_strong"], mode="lines+markers",
                                 name="saved vs always-strong",
                                 hovertemplate="abstain %{x:.1%}<br>saved %{y:.1%}<extra></extra>"), row=1, col=2)
        fig.update_xaxes(tickformat=PCT_AXIS, title_text="abstain rate", row=1, col=2)
        fig.update_yaxes(tickformat=PCT_AXIS, row=1, col=2)
    fig.update_layout(title=_esc(title), showlegend=False)
    return fig


def plot_baselines(table, *, title="Baselines on the same folds"):
    """Tier accuracy and downgrade rate per method (grouped bars), latency in the hover."""
    go = _go()
    names = [_esc(m) for m in table["method"]]
    fig = go.Figure()
    for col, label in (("tier_accuracy", "tier accuracy"), ("category_accuracy", "category accuracy"),
                       ("downgrade_rate", "downgrade rate")):
        fig.add_trace(go.Bar(x=names, y=table[col], name=label, customdata=table["latency_ms"],
                             hovertemplate="%{x}<br>" + label + " %{y:.1%}<br>%{customdata:.3f} ms/message<extra></extra>"))
    fig.update_layout(title=_esc(title), barmode="group", yaxis_tickformat=PCT_AXIS)
    return fig


def plot_pool_size_curve(table, *, title="Tier accuracy vs pool size"):
    """Tier accuracy (± std over repeats) vs messages per category, one line per subsampling strategy."""
    go = _go()
    fig = go.Figure()
    for strategy, g in table.groupby("strategy", sort=False):
        fig.add_trace(go.Scatter(x=g["per_category"], y=g["tier_accuracy"], name=_esc(strategy), mode="lines+markers",
                                 error_y={"type": "data", "array": g["tier_accuracy_std"]},
                                 customdata=g["pool_size"],
                                 hovertemplate="%{x} per category (%{customdata} in all)<br>tier accuracy %{y:.1%}"
                                               "<extra></extra>"))
    fig.update_layout(title=_esc(title), xaxis_title="messages per category", xaxis_type="log",
                      yaxis_title="tier accuracy (held-out set)", yaxis_tickformat=PCT_AXIS)
    return fig


def plot_robustness(table, *, title="Tier accuracy on perturbed messages"):
    """Tier accuracy per perturbation (bars), the share whose tier changed in the hover."""
    go = _go()
    examples = table["example"] if "example" in table else [""] * len(table)
    hover = [_esc(e)[:200] for e in examples]
    fig = go.Figure(go.Bar(x=[_esc(p) for p in table["perturbation"]], y=table["tier_accuracy"],
                           customdata=np.c_[table["tier_changed"], hover],
                           hovertemplate="%{x}<br>tier accuracy %{y:.1%}<br>tier changed %{customdata[0]:.1%}"
                                         "<br>e.g. %{customdata[1]}<extra></extra>"))
    fig.update_layout(title=_esc(title), yaxis_tickformat=PCT_AXIS, yaxis_title="tier accuracy")
    return fig


def plot_review_queue(queue, *, max_rows=50, title="Label review queue"):
    """The queue as a plotly table (escaped text, label, suggestion, probabilities, nearest neighbour).

    Tall enough for every row it shows; :func:`workbench.plots.sortable_table` is the sortable alternative
    the notebooks use.
    """
    go = _go()
    q = queue.head(max_rows)
    first = [(_esc(n[0]["category"]) + ": " + _esc(n[0]["text"])[:120]) if len(n) else "" for n in q["neighbors"]]
    cols = [[_esc(v) for v in q["id"]], [_esc(t)[:200] for t in q["text"]], [_esc(v) for v in q["category"]],
            [_esc(v) for v in q["suggested"]], [f"{v:.2f}" for v in q["p_given"]],
            [f"{v:.2f}" for v in q["p_suggested"]], first]
    fig = go.Figure(go.Table(header={"values": ["id", "text", "label", "suggested", "p(label)", "p(suggested)",
                                                "nearest neighbour"]},
                             cells={"values": cols, "align": "left"}, columnwidth=[1, 4, 1, 1, 0.7, 0.7, 3]))
    fig.update_layout(title=_esc(f"{title} ({len(queue)} messages)"), height=160 + 60 * max(1, len(q)))
    return fig
