"""Plotly figures of an evaluation: confusion heatmaps, accuracy bars, sweep and backend comparison.

Same manners as :mod:`workbench.plots.pool`: one function per concern, figures
returned, never shown or saved.
"""
from __future__ import annotations

import numpy as np

from ._base import PCT_AXIS, TIER_COLORS, go as _go

__all__ = ["plot_confusion", "plot_per_category", "plot_rates", "plot_group_accuracy", "plot_sweep",
           "plot_backends"]

def plot_confusion(confusion, *, title="Confusion (rows: label, columns: routed)"):
    """Annotated heatmap of a confusion table: colour = row share, text = count and row %.

    Parameters
    ----------
    confusion : pandas.DataFrame of counts, index = true label, columns = prediction
    """
    from ..analysis.metrics import row_normalize

    go = _go()
    share = row_normalize(confusion)
    counts = confusion.to_numpy()
    text = [[f"{int(c)}<br>{100 * s:.0f}%" for c, s in zip(crow, srow)] for crow, srow in zip(counts, share.to_numpy())]
    rows, cols = [str(i) for i in confusion.index], [str(c) for c in confusion.columns]
    fig = go.Figure(go.Heatmap(z=share.to_numpy(), x=cols, y=rows, text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="row share"),
                               hovertemplate="label %{y} → routed %{x}<br>%{text}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="routed", yaxis_title="label",
                      yaxis=dict(autorange="reversed"), height=200 + 45 * len(rows))
    return fig


def plot_per_category(per_category, *, title="Accuracy per category"):
    """Category and tier accuracy per category, bars coloured by the category's tier.

    Solid bars are category accuracy, hatched bars tier accuracy; the
    legend says so with grey swatches, and lists the tier colours apart.

    Parameters
    ----------
    per_category : pandas.DataFrame from :class:`~workbench.metrics.Metrics` (``tier``, ``n``, ``accuracy``, ``tier_accuracy``)
    """
    go = _go()
    t = per_category[per_category["n"] > 0]
    cats = [f"{c} ({tier})" for c, tier in zip(t.index, t["tier"])]
    colors = [TIER_COLORS.get(tier, "#7f7f7f") for tier in t["tier"]]
    measures = (("accuracy", "category accuracy", ""), ("tier_accuracy", "tier accuracy", "/"))
    fig = go.Figure([go.Bar(x=cats, y=t[col], name=label, showlegend=False, legendgroup=label,
                            marker=dict(color=colors, pattern=dict(shape=shape, fillmode="overlay", fgcolor="white")),
                            text=[f"{100 * v:.0f}%" for v in t[col]], textposition="outside",
                            hovertemplate="%{x}<br>" + label + " %{y:.1%}<extra></extra>")
                     for col, label, shape in measures])
    # the legend: one swatch per meaning (grey solid / hatched for the measure, a colour per tier)
    for _, label, shape in measures:
        fig.add_trace(go.Bar(x=[None], y=[None], name=label, legendgroup=label,
                             marker=dict(color="#7f7f7f", pattern=dict(shape=shape, fillmode="overlay", fgcolor="white"))))
    for tier in dict.fromkeys(t["tier"]):
        fig.add_trace(go.Bar(x=[None], y=[None], name=f"tier: {tier}", marker=dict(color=TIER_COLORS.get(tier, "#7f7f7f")),
                             legend="legend2"))
    fig.update_layout(title=title, barmode="group", yaxis=dict(range=[0, 1.08], tickformat=PCT_AXIS),
                      xaxis_title="category (tier)", legend2=dict(itemclick=False, itemdoubleclick=False, y=0.5))
    return fig


def plot_rates(results, *, title="Routing errors by direction"):
    """Upgrade vs downgrade rate of several evaluations side by side.

    Parameters
    ----------
    results : dict of name -> :class:`~workbench.metrics.Metrics` (or a dict with the rates)
    """
    go = _go()
    names = list(results)
    get = lambda m, k: float(m[k] if isinstance(m, dict) else getattr(m, k))  # noqa: E731
    fig = go.Figure([go.Bar(x=names, y=[get(results[n], key) for n in names], name=label,
                            marker=dict(color=color), text=[f"{100 * get(results[n], key):.1f}%" for n in names],
                            textposition="outside")
                     for key, label, color in (("downgrade_rate", "downgrade (visible to users)", "#d62728"),
                                               ("upgrade_rate", "upgrade (costs money)", "#ff7f0e"))])
    fig.update_layout(title=title, barmode="group", yaxis=dict(tickformat=PCT_AXIS, title="share of messages"))
    return fig


def plot_group_accuracy(table, *, title="Accuracy by group", order=None):
    """Tier and category accuracy per group (language, length bucket, ...), with each group's size.

    Parameters
    ----------
    table : pandas.DataFrame indexed by group with ``n``, ``accuracy``, ``tier_accuracy``
    order : sequence, optional
        Group order (default: largest first).
    """
    go = _go()
    t = table.reindex(order) if order is not None else table.sort_values("n", ascending=False)
    x = [f"{g} (n={int(n)})" for g, n in zip(t.index, t["n"])]
    fig = go.Figure([go.Bar(x=x, y=t["tier_accuracy"], name="tier accuracy"),
                     go.Bar(x=x, y=t["accuracy"], name="category accuracy")])
    fig.update_layout(title=title, barmode="group", yaxis=dict(range=[0, 1.02], tickformat=PCT_AXIS))
    return fig


def plot_sweep(table, *, metric="tier_accuracy", title="k × vote rule × centering (leave-one-out)"):
    """Lines of ``metric`` against k: one line per vote rule and centering."""
    go = _go()
    fig = go.Figure()
    for (rule, center), part in table.groupby(["vote", "center"], sort=True):
        part = part.sort_values("k")
        fig.add_trace(go.Scatter(x=part["k"], y=part[metric], mode="lines+markers",
                                 name=f"{rule}, {'centred' if center else 'raw'}",
                                 line=dict(dash="solid" if center else "dot")))
    best = table.iloc[int(np.argmax(table[metric].to_numpy()))]
    fig.add_annotation(x=best["k"], y=best[metric], text=f"best {100 * best[metric]:.1f}%", showarrow=True)
    fig.update_layout(title=title, xaxis_title="k", yaxis=dict(title=metric.replace("_", " "), tickformat=PCT_AXIS))
    return fig


def plot_backends(table, *, title="Embedding backends on the same pool"):
    """Grouped bars of LOO tier/category accuracy and LDGO tier accuracy per backend."""
    go = _go()
    x = [str(b) for b in table.index]
    fig = go.Figure([go.Bar(x=x, y=table[c], name=label, text=[f"{100 * v:.1f}%" for v in table[c]],
                            textposition="outside")
                     for c, label in (("tier_accuracy", "tier accuracy (LOO)"),
                                      ("category_accuracy", "category accuracy (LOO)"),
                                      ("ldgo_tier_accuracy", "tier accuracy (leave-dup-group-out)")) if c in table])
    fig.update_layout(title=title, barmode="group", yaxis=dict(range=[0, 1.08], tickformat=PCT_AXIS))
    return fig
