"""Plotly figures of a pool: cluster maps, counts and lengths.

One ``plot_<thing>(data, *, title=...)`` per concern. They return a figure
and never show or save it. Maps take precomputed 2-D coordinates (see
:mod:`workbench.projection`) so one UMAP fit serves every figure. Message
text is HTML-escaped before it reaches a hover label.
"""
from __future__ import annotations

import numpy as np

from ._base import PALETTE, clip, esc, go as _go

__all__ = ["plot_map", "plot_set_comparison", "plot_counts", "plot_length_histogram", "hover_text"]

MAP_COLOR_FIELDS = ("category", "tier", "source", "lang")


def hover_text(frame, neighbors=None, similarities=None, *, width=120, neighbor_width=60):
    """Escaped hover labels: text, label, language, source and (optionally) nearest neighbours.

    Parameters
    ----------
    frame : pandas.DataFrame with ``text``, ``category`` and optionally ``tier``, ``lang``, ``source``, ``id``
    neighbors, similarities : (n, k) arrays, optional
        Row indices into ``frame`` of each row's nearest neighbours and their cosine.
    """
    texts, cats = frame["text"].astype(str).tolist(), frame["category"].astype(str).tolist()
    extra = [frame[c].astype(str).tolist() if c in frame else [""] * len(frame) for c in ("tier", "lang", "source", "id")]
    out = []
    for i, (text, cat) in enumerate(zip(texts, cats)):
        tier, lang, source, mid = (e[i] for e in extra)
        lines = [f"<b>{esc(cat)}</b> ({esc(tier)}) · {esc(lang)} · {esc(source)} · {esc(mid)}", esc(clip(text, width))]
        if neighbors is not None:
            lines.append("<i>nearest:</i>")
            for j, s in zip(neighbors[i], similarities[i]):
                lines.append(f"{s:.2f} [{esc(cats[j])}] {esc(clip(texts[j], neighbor_width))}")
        out.append("<br>".join(lines))
    return out


def plot_map(coords, frame, *, color_by=MAP_COLOR_FIELDS, neighbors=None, similarities=None, pairs=None,
             title="Pool map"):
    """Scatter of a 2-D projection with a dropdown choosing the colour field.

    Parameters
    ----------
    coords : (n, 2) array
    frame : pandas.DataFrame, one row per point
    color_by : sequence of str
        Columns of ``frame`` offered in the dropdown (missing ones are skipped).
    neighbors, similarities : (n, k) arrays, optional
        Shown in the hover label.
    pairs : (i, j) index arrays, optional
        Near-duplicate pairs, drawn as grey links between points.
    """
    go = _go()
    coords = np.asarray(coords, float)
    hover = np.array(hover_text(frame, neighbors, similarities), dtype=object)
    fields = [c for c in color_by if c in frame]
    fig = go.Figure()
    n_links = 0
    if pairs is not None and len(pairs[0]):
        i, j = np.asarray(pairs[0]), np.asarray(pairs[1])
        xs = np.column_stack([coords[i, 0], coords[j, 0], np.full(len(i), np.nan)]).ravel()
        ys = np.column_stack([coords[i, 1], coords[j, 1], np.full(len(i), np.nan)]).ravel()
        fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", name="near-duplicate link", hoverinfo="skip",
                                   line=dict(color="rgba(80,80,80,0.6)", width=1)))
        n_links = 1
    spans = []
    for f, field in enumerate(fields):
        values = frame[field].astype(str).to_numpy()
        start = len(fig.data)
        for v_i, v in enumerate(sorted(set(values))):
            m = values == v
            fig.add_trace(go.Scattergl(x=coords[m, 0], y=coords[m, 1], mode="markers", name=v, text=hover[m],
                                       hovertemplate="%{text}<extra></extra>",
                                       marker=dict(size=6, opacity=0.8, color=PALETTE[v_i % len(PALETTE)]),
                                       legendgroup=field, visible=f == 0))
        spans.append((field, start, len(fig.data)))
    buttons = []
    for field, a, b in spans:
        visible = [True] * n_links + [a <= t < b for t in range(n_links, len(fig.data))]
        buttons.append(dict(label=f"colour: {field}", method="update", args=[{"visible": visible}]))
    fig.update_layout(title=title, height=650, hoverlabel=dict(align="left"), legend=dict(itemsizing="constant"),
                      xaxis=dict(showticklabels=False, title=""), yaxis=dict(showticklabels=False, title=""),
                      margin=dict(t=100),
                      updatemenus=[dict(buttons=buttons, x=1, xanchor="right", y=1.02, yanchor="bottom")] if buttons else [])
    return fig


def plot_set_comparison(coords, frame, sets, *, color="category", title="Template set vs written pool"):
    """Side-by-side maps of named sets projected together (same axes, comparable spread).

    Parameters
    ----------
    coords : (n, 2) array of all points
    frame : pandas.DataFrame, one row per point
    sets : (n,) array of set names; one panel per name, in order of first appearance
    """
    from plotly.subplots import make_subplots

    go = _go()
    coords = np.asarray(coords, float)
    sets = np.asarray(sets, dtype=object)
    names = list(dict.fromkeys(sets))
    hover = np.array(hover_text(frame), dtype=object)
    values = frame[color].astype(str).to_numpy()
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[f"{n} ({(sets == n).sum()})" for n in names],
                        shared_xaxes=True, shared_yaxes=True)
    for c, name in enumerate(names, 1):
        for v_i, v in enumerate(sorted(set(values))):
            m = (sets == name) & (values == v)
            fig.add_trace(go.Scattergl(x=coords[m, 0], y=coords[m, 1], mode="markers", name=v, legendgroup=v,
                                       showlegend=c == 1, text=hover[m], hovertemplate="%{text}<extra></extra>",
                                       marker=dict(size=6, opacity=0.8, color=PALETTE[v_i % len(PALETTE)])),
                          row=1, col=c)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(title=title, height=520, hoverlabel=dict(align="left"))
    return fig


def plot_counts(frame, *, x="category", color="lang", title="Messages per category"):
    """Stacked bars: messages per ``x`` value, split by ``color``."""
    go = _go()
    table = frame.groupby([x, color]).size().unstack(fill_value=0)
    table = table[table.sum().sort_values(ascending=False).index]
    fig = go.Figure([go.Bar(x=table.index.astype(str), y=table[c], name=str(c)) for c in table.columns])
    fig.update_layout(barmode="stack", title=title, xaxis_title=x, yaxis_title="messages", legend_title=color)
    return fig


def plot_length_histogram(frame, *, by="category", nbins=40, title="Message length (characters)"):
    """Overlaid histograms of message length, one per ``by`` value."""
    go = _go()
    lengths = frame["text"].astype(str).str.len()
    fig = go.Figure([go.Histogram(x=lengths[frame[by] == v], name=str(v), nbinsx=nbins, opacity=0.6)
                     for v in sorted(frame[by].unique())])
    fig.update_layout(barmode="overlay", title=title, xaxis_title="characters", yaxis_title="messages")
    return fig
