"""Plotly figures of the traffic section: the mix per day, cost against all-strong, confidence, coverage, the map.

One function per concern, figures returned, never shown or saved. Logged message texts reach a figure only through
:func:`workbench.plots.plot_map`, which escapes them.
"""
from __future__ import annotations

import numpy as np

from ._base import PALETTE, PCT_AXIS, TIER_COLORS, clip, esc, go as _go

__all__ = ["plot_traffic_mix", "plot_traffic_cost", "plot_live_confidence", "plot_coverage", "plot_traffic_map",
           "TRAFFIC_SOURCES"]

#: The ``source`` of each point on the traffic map: the pool, and logged messages covered or not.
TRAFFIC_SOURCES = ("pool", "traffic: covered", "traffic: uncovered")


def plot_traffic_mix(mix, *, by="tier", title=None):
    """Stacked shares per day, one bar segment per tier (or category).

    Parameters
    ----------
    mix : pandas.DataFrame from ``TrafficLog.mix(by)`` (``day, <by>, n, share``)
    """
    go = _go()
    fig = go.Figure()
    for i, (value, part) in enumerate(mix.groupby(by, sort=True)):
        color = TIER_COLORS.get(value, PALETTE[i % len(PALETTE)]) if by == "tier" else PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Bar(x=part["day"], y=part["share"], name=esc(value), marker_color=color,
                             customdata=part["n"], hovertemplate=f"{esc(value)}: %{{y:.1%}} (%{{customdata}})"
                                                                  "<extra>%{x}</extra>"))
    fig.update_layout(barmode="stack", title=title or f"Traffic mix by {by}, per day (UTC)",
                      yaxis=dict(title="share of routed requests", tickformat=PCT_AXIS, range=[0, 1]),
                      xaxis=dict(title="day", type="category"), height=420, legend=dict(orientation="h", y=-0.25))
    return fig


def plot_traffic_cost(cost, *, title="Cost per day at the logged token counts"):
    """Routed cost against sending everything to the strong or the medium tier, per day.

    Parameters
    ----------
    cost : pandas.DataFrame from ``TrafficLog.cost()`` (its ``all`` row is left out)
    """
    go = _go()
    days = cost[cost["day"] != "all"]
    fig = go.Figure()
    for column, label, color in (("all_strong", "all strong", TIER_COLORS["strong"]),
                                 ("all_medium", "all medium", TIER_COLORS["medium"]),
                                 ("routed", "routed", TIER_COLORS["cheap"])):
        fig.add_trace(go.Bar(x=days["day"], y=days[column], name=label, marker_color=color,
                             hovertemplate=f"{label}: $%{{y:.4f}}<extra>%{{x}}</extra>"))
    fig.update_layout(barmode="group", title=title, yaxis=dict(title="dollars"), xaxis=dict(title="day", type="category"),
                      height=420, legend=dict(orientation="h", y=-0.25))
    return fig


def plot_live_confidence(table, *, title="Confidence of live decisions against the pool's out-of-fold"):
    """Share of decisions per confidence bin, live and (when given) the pool's out-of-fold.

    Parameters
    ----------
    table : pandas.DataFrame from ``TrafficLog.confidence()`` (``bin_low, bin_high, share``, optional ``pool_share``)
    """
    go = _go()
    labels = [f"{lo:.1f}–{hi:.1f}" for lo, hi in zip(table["bin_low"], table["bin_high"])]
    fig = go.Figure(go.Bar(x=labels, y=table["share"], name="live", marker_color=PALETTE[0],
                           hovertemplate="live %{x}: %{y:.1%}<extra></extra>"))
    if "pool_share" in table:
        fig.add_trace(go.Bar(x=labels, y=table["pool_share"], name="pool (out of fold)", marker_color=PALETTE[7],
                             hovertemplate="pool %{x}: %{y:.1%}<extra></extra>"))
    fig.update_layout(barmode="group", title=title, xaxis=dict(title="confidence of the routed tier"),
                      yaxis=dict(title="share of decisions", tickformat=PCT_AXIS), height=420,
                      legend=dict(orientation="h", y=-0.25))
    return fig


def plot_coverage(pool_similarity, similarity, threshold, *, title=None):
    """Nearest-pool similarity of logged messages against the pool's own (leave-one-out), with the threshold.

    Parameters
    ----------
    pool_similarity, similarity : arrays from :func:`workbench.analysis.uncovered.coverage_of`
    threshold : float
        Below it a message is uncovered.
    """
    go = _go()
    share = float(np.mean(np.asarray(similarity) < threshold)) if len(similarity) else float("nan")
    fig = go.Figure()
    for values, name, color in ((pool_similarity, "pool (nearest other pool message)", PALETTE[7]),
                                (similarity, "traffic (nearest pool message)", PALETTE[0])):
        fig.add_trace(go.Histogram(x=np.asarray(values, float), name=name, histnorm="probability", opacity=0.6,
                                   marker_color=color, xbins=dict(size=0.02)))
    fig.add_vline(x=threshold, line=dict(color=TIER_COLORS["strong"], dash="dash"),
                  annotation_text=f"pool 5th percentile {threshold:.3f}: {share:.1%} of traffic below")
    fig.update_layout(barmode="overlay", title=title or "Coverage: similarity to the nearest pool message",
                      xaxis=dict(title="cosine similarity"), yaxis=dict(title="share", tickformat=PCT_AXIS),
                      height=420, legend=dict(orientation="h", y=-0.25))
    return fig


def plot_traffic_map(pool_coords, pool_frame, traffic_coords, traffic_frame, uncovered, *, max_pool_points=None,
                     seed=0, title="Traffic on the pool's map (uncovered messages highlighted)"):
    """The pool's map with logged messages placed by the pool's UMAP transform, coloured by covered or not.

    A :func:`workbench.plots.plot_map` figure (so :func:`workbench.plots.explore_map` selects on it): ``source``
    says pool, covered or uncovered traffic; a logged message's ``category`` and ``tier`` are the routed ones.

    Parameters
    ----------
    pool_coords, traffic_coords : (n, 2) arrays from :func:`workbench.analysis.uncovered.traffic_map_coords`
    pool_frame : pandas.DataFrame of the pool (``id, text, category, lang``; ``tier`` optional)
    traffic_frame : pandas.DataFrame of the logged messages (``request_id, text, category, tier``)
    uncovered : bool array, one per logged message
    max_pool_points : int, optional
        Draw a seeded sample of this many pool messages (the layout is the whole pool's either way): a lighter page.
    seed : int
    """
    import pandas as pd

    from .pool import plot_map

    pool_coords = np.asarray(pool_coords, np.float32)
    pool = pool_frame.assign(source=TRAFFIC_SOURCES[0])
    if max_pool_points is not None and len(pool) > max_pool_points:
        rows = np.sort(np.random.default_rng(seed).choice(len(pool), max_pool_points, replace=False))
        pool, pool_coords = pool.iloc[rows].reset_index(drop=True), pool_coords[rows]
    traffic = pd.DataFrame({"id": traffic_frame["request_id"].astype(str), "text": traffic_frame["text"].astype(str),
                            "category": traffic_frame["category"].fillna("(none)").astype(str),
                            "tier": traffic_frame["tier"].fillna("").astype(str),
                            "lang": traffic_frame["lang"] if "lang" in traffic_frame else "",
                            "source": np.where(np.asarray(uncovered, bool), TRAFFIC_SOURCES[2], TRAFFIC_SOURCES[1])})
    keep = [c for c in ("id", "text", "category", "tier", "lang", "source") if c in pool or c in traffic]
    frame = pd.concat([pool.reindex(columns=keep), traffic[keep]], ignore_index=True).fillna("")
    coords = np.vstack([pool_coords, np.asarray(traffic_coords, np.float32)])
    fig = plot_map(coords, frame, color="source", title=esc(clip(title, 200)))
    return fig
