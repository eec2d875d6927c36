"""Plotly figures of generalisation: reliability of confidence, accuracy per out-of-distribution source, conversations.

Same manners as :mod:`workbench.plots.evaluation`: one function per concern, figures returned, never shown or saved.
"""
from __future__ import annotations

from ._base import PALETTE, PCT_AXIS, esc, go as _go

__all__ = ["plot_reliability", "plot_source_accuracy", "plot_context_rules", "plot_conversation_policies",
           "plot_confidence_coverage", "plot_threshold_curve"]


def plot_reliability(tables, *, title="Reliability of tier confidence (out of fold)"):
    """Reliability diagram: each bin's accuracy against its mean confidence, one line per table, and the diagonal.

    Parameters
    ----------
    tables : dict label -> pandas.DataFrame from :func:`workbench.analysis.calibration.reliability_table`
        e.g. ``{"raw (ECE 12.8%)": before, "isotonic (ECE 1.7%)": after}``.
    """
    go = _go()
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#999", dash="dot"),
                               name="perfectly calibrated", hoverinfo="skip"))
    for i, (label, t) in enumerate(tables.items()):
        t = t[t["n"] > 0]
        fig.add_trace(go.Scatter(
            x=t["mean_score"], y=t["accuracy"], mode="lines+markers", name=esc(label),
            marker=dict(size=[6 + 24 * s ** 0.5 for s in t["share"]], color=PALETTE[i % len(PALETTE)]),
            customdata=list(zip(t["n"], t["bin_low"], t["bin_high"])),
            hovertemplate="confidence %{customdata[1]:.1f}–%{customdata[2]:.1f}: mean %{x:.3f}, "
                          "accuracy %{y:.3f}, %{customdata[0]} messages<extra></extra>"))
    fig.update_layout(title=title, xaxis=dict(title="confidence (mean of the bin)", range=[0, 1.02]),
                      yaxis=dict(title="tier accuracy of the bin", range=[0, 1.02]), height=460,
                      legend=dict(orientation="h", y=-0.2))
    return fig


def plot_source_accuracy(per_source, *, target=None, title="Tier accuracy per source (out of distribution)"):
    """Tier accuracy, downgrades and upgrades per source as grouped bars, with an optional target line.

    Parameters
    ----------
    per_source : pandas.DataFrame indexed by source, from :class:`workbench.analysis.generalisation.Generalisation`
    target : float, optional
    """
    go = _go()
    names = [esc(s) for s in per_source.index]
    fig = go.Figure()
    for col, label, color in (("tier_accuracy", "tier accuracy", "#1f77b4"), ("downgrade_rate", "downgrades", "#d62728"),
                              ("upgrade_rate", "upgrades", "#ff7f0e")):
        fig.add_trace(go.Bar(x=names, y=per_source[col], name=label, marker_color=color,
                             text=[f"{100 * v:.0f}%" for v in per_source[col]], textposition="outside"))
    if target is not None:
        fig.add_hline(y=target, line=dict(color="#555", dash="dash"), annotation_text=f"{100 * target:.0f}%")
    fig.update_layout(title=title, barmode="group", yaxis=dict(title="share of the source's messages", range=[0, 1.1]),
                      height=440)
    return fig


def plot_context_rules(table, *, title="Context rules: tier accuracy per turn kind (held-out folds)"):
    """Tier accuracy on all, fresh and follow-up turns for each context rule, with the downgrades in the hover.

    Parameters
    ----------
    table : pandas.DataFrame, the ``table`` of :func:`workbench.analysis.conversations.compare_context_rules`
    """
    go = _go()
    fig = go.Figure()
    for i, kind in enumerate(("all", "fresh", "follow_up")):
        fig.add_trace(go.Bar(
            x=[esc(p) for p in table.index], y=table[f"{kind}_tier_accuracy"], name=kind.replace("_", "-") + " turns",
            marker_color=PALETTE[i], text=[f"{100 * v:.0f}%" for v in table[f"{kind}_tier_accuracy"]],
            textposition="outside", customdata=table[f"{kind}_downgrade_rate"],
            hovertemplate="%{x}: tier accuracy %{y:.3f}, downgrades %{customdata:.3f}<extra></extra>"))
    fig.update_layout(title=title, barmode="group", yaxis=dict(title="tier accuracy", range=[0, 1.1]), height=420)
    return fig


#: The name before "context rule" (kept for one release).
plot_conversation_policies = plot_context_rules


def plot_threshold_curve(curves, *, shipped=None, title="The detector rule at every follow-up threshold (held-out folds)"):
    """Tier accuracy and downgrades of fresh, follow-up and all turns against the follow-up threshold, one line style
    per conversation set.

    Parameters
    ----------
    curves : dict label -> pandas.DataFrame from :func:`workbench.analysis.conversations.threshold_curve`
    shipped : float, optional
        The threshold that ships, drawn as a vertical line.
    """
    from plotly.subplots import make_subplots

    go = _go()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("tier accuracy", "downgraded"), horizontal_spacing=0.1)
    dashes = ("solid", "dot", "dash", "dashdot")
    for n, (label, curve) in enumerate(curves.items()):
        for i, kind in enumerate(("fresh", "follow_up", "all")):
            for col, rate in ((1, "tier_accuracy"), (2, "downgrade_rate")):
                fig.add_trace(go.Scatter(
                    x=list(curve.index), y=curve[f"{kind}_{rate}"], mode="lines+markers",
                    name=f"{esc(label)}: {kind.replace('_', '-')} turns", legendgroup=f"{n}-{kind}",
                    showlegend=col == 1, line=dict(color=PALETTE[i], dash=dashes[n % len(dashes)]),
                    customdata=curve["follow_up_share"],
                    hovertemplate=f"{esc(label)}, {kind.replace('_', '-')}: threshold %{{x}}, "
                                  f"{rate.replace('_', ' ')} %{{y:.3f}} (turns read as follow-ups "
                                  "%{customdata:.2f})<extra></extra>"), row=1, col=col)
    if shipped is not None:
        for col in (1, 2):
            fig.add_vline(x=shipped, line=dict(color="#555", dash="dash"), row=1, col=col)
    fig.update_xaxes(title_text="follow-up threshold")
    fig.update_yaxes(tickformat=PCT_AXIS)
    fig.update_layout(title=title, height=440, legend=dict(orientation="h", y=-0.25))
    return fig


def plot_confidence_coverage(frame, *, title="Confidence against nearest-pool similarity"):
    """Each message's confidence against its nearest pool neighbour's similarity, one colour per source.

    Parameters
    ----------
    frame : pandas.DataFrame from :func:`workbench.analysis.coverage.confidence_by_coverage`
        (``source``, ``nearest_similarity``, ``confidence``, ``text``; ``correct`` shapes right and wrong tiers).
    """
    go = _go()
    fig = go.Figure()
    for i, (source, part) in enumerate(frame.groupby(frame["source"].fillna("messages"), sort=False)):
        symbols = ["circle" if c else "x" for c in part["correct"]] if "correct" in part else "circle"
        fig.add_trace(go.Scatter(
            x=part["nearest_similarity"], y=part["confidence"], mode="markers", name=esc(str(source)),
            marker=dict(size=6, opacity=0.6, color=PALETTE[i % len(PALETTE)], symbol=symbols),
            customdata=[esc(t[:120]) for t in part["text"]],
            hovertemplate="similarity %{x:.3f}, confidence %{y:.3f}<br>%{customdata}<extra></extra>"))
    fig.update_layout(title=title, xaxis=dict(title="similarity of the nearest pool message"),
                      yaxis=dict(title="confidence (routed tier)", range=[0, 1.02]), height=460,
                      legend=dict(orientation="h", y=-0.2))
    return fig
