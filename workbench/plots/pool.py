"""Plotly figures of a pool: cluster maps, counts and lengths.

One ``plot_<thing>(data, *, title=...)`` per concern. They return a figure
and never show or save it. Maps take precomputed 2-D coordinates (see
:mod:`workbench.analysis.projection`) so one UMAP fit serves every figure.
Message text is HTML-escaped before it reaches a hover label.

A map carries each point's data once: one trace per value of the first
colour field (so a legend click hides one category and a double-click
isolates it), every field of a point in ``customdata`` (named by
``layout.meta.workbench.columns``, which the report's selection script and
the explorer widget read), and the other colourings as marker colours that
the dropdown switches.
"""
from __future__ import annotations

import numpy as np

from .. import config as _config
from ._base import OTHER_COLOR, TIER_COLORS, clip, color_key, esc, go as _go, wrap

__all__ = ["plot_map", "plot_set_comparison", "plot_counts", "plot_length_histogram", "hover_text", "map_points",
           "legend_title", "label_clusters", "MAP_COLUMNS", "MAP_COLOR_FIELDS", "ERROR_COLORS"]

MAP_COLOR_FIELDS = ("category", "tier", "source", "lang", "error")
#: What ``customdata`` holds for each map point, in order: the row position in the frame, the HTML-escaped id,
#: text (wrapped with ``<br>``), language and source, the routed category (an index into
#: ``layout.meta.workbench.categories``, -1 when unknown), the hover line saying what went wrong (empty when
#: routed right), the kind of error (an index into ``layout.meta.workbench.errors``, -1 when unknown), how many
#: neighbours share the label, and the neighbours (row positions, cosine to 2 decimals).
MAP_COLUMNS = ("row", "id", "text", "lang", "source", "predicted", "routed", "error", "agree", "neighbors",
               "similarities")
#: Colours of :data:`workbench.analysis.tables.ERROR_KINDS` (the colours of ``plot_rates`` for the two directions).
ERROR_COLORS = {"correct": OTHER_COLOR, "same tier": "#1f77b4", "upgrade": "#ff7f0e", "downgrade": "#d62728"}
_FIXED = {"tier": TIER_COLORS, "error": ERROR_COLORS}
_HOVER_WIDTH = 80


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


def map_points(frame, neighbors=None, similarities=None, categories=None, rows=None, neighbor_labels=None):
    """``customdata`` rows of a map, one per row of ``frame``, in :data:`MAP_COLUMNS` order.

    Parameters
    ----------
    frame : pandas.DataFrame with ``text`` and ``category``; ``id``, ``lang``, ``source``, ``predicted``,
        ``predicted_tier`` and ``error`` are used when present
    neighbors, similarities : (n, k) arrays, optional
        Neighbours as row numbers (see ``rows``).
    categories : sequence of str, optional
        The order ``predicted`` is coded in (default: sorted categories of the frame).
    rows : (n,) int array, optional
        The row number of each point, the numbers ``neighbors`` use (default
        ``0..n-1``; a subset of a pool keeps the pool's numbers).
    neighbor_labels : (n, k) array of str, optional
        The neighbours' categories (default: looked up in ``frame``; give
        them for a subset whose neighbours are not all in it).
    """
    n = len(frame)
    rows_of = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    same = dict(zip(rows_of.tolist(), frame["category"].astype(str)))
    cats = frame["category"].astype(str).to_numpy()
    categories = list(categories if categories is not None else sorted(set(cats)))
    col = {c: ([esc(v) for v in frame[c].astype(str)] if c in frame else [""] * n) for c in ("id", "lang", "source")}
    code = {c: i for i, c in enumerate(categories)}
    kinds = {k: i for i, k in enumerate(ERROR_COLORS)}
    predicted = frame["predicted"].astype(str).to_numpy() if "predicted" in frame else None
    out = []
    for i, text in enumerate(frame["text"].astype(str)):
        pred, routed, error, agree, nbrs, sims = -1, "", -1, "", [], []
        if "error" in frame:
            error = kinds.get(frame["error"].iat[i], -1)
        if predicted is not None:
            pred = code.get(predicted[i], -1)
            if predicted[i] != cats[i]:
                routed = (f"<br><b>routed: {esc(predicted[i])} ({esc(frame['predicted_tier'].iat[i])})"
                          f"{', ' + esc(frame['error'].iat[i]) if 'error' in frame else ''}</b>")
        if neighbors is not None:
            keep = np.isfinite(similarities[i])
            nbrs = [int(j) for j in np.asarray(neighbors[i])[keep]]
            sims = [round(float(s), 2) for s in np.asarray(similarities[i])[keep]]
            labels = (list(np.asarray(neighbor_labels[i])[keep]) if neighbor_labels is not None
                      else [same.get(j) for j in nbrs])
            known = [lab for lab in labels if lab is not None]
            agree = f"{sum(lab == cats[i] for lab in known)}/{len(known)}" if known else ""
        out.append([int(rows_of[i]), col["id"][i], wrap(esc(text), _HOVER_WIDTH), col["lang"][i], col["source"][i],
                    pred, routed, error, agree, nbrs, sims])
    return out


def _hovertemplate(name, tier, neighbors):
    c = {col: f"%{{customdata[{i}]}}" for i, col in enumerate(MAP_COLUMNS)}
    tpl = (f"<b>{esc(name)}</b>{f' ({esc(tier)})' if tier else ''} · {c['lang']} · {c['source']} · {c['id']}"
           f"<br>{c['text']}{c['routed']}")
    if neighbors is not None:
        tpl += f"<br>neighbours with this label: {c['agree']}"
    return tpl + "<extra></extra>"


def legend_title(color):
    """The title of a map's category legend under a colouring: its entries colour the points only by category."""
    hint = "<br><sup>click: hide · double-click: only this</sup>"
    return f"colour: category{hint}" if color == "category" else f"show category (colour: {esc(color)}){hint}"


def _colors(field, values, max_colors):
    """(legend entry -> colour, value -> legend entry) of one colour field."""
    fixed = _FIXED.get(field)
    if fixed and set(values) <= set(fixed):
        key = {v: fixed[v] for v in fixed if v in set(values)}
        return key, {v: v for v in key}
    return color_key(values, max_colors=max_colors)


def _coded(key, names, values):
    """Per-point colour codes (0..n-1) and the discrete colour scale that draws them at cmin=-0.5, cmax=n-0.5.

    Integer codes keep a colouring of thousands of points a few kilobytes (colour strings would be ten times that).
    """
    entries = list(key)
    pos = {e: k for k, e in enumerate(entries)}
    codes = np.array([pos[names[v]] for v in values], dtype=np.int16)
    n = len(entries)
    scale = [[p, key[e]] for k, e in enumerate(entries) for p in (k / n, (k + 1) / n)]
    return codes, scale, n


def plot_map(coords, frame, *, color_by=MAP_COLOR_FIELDS, color="category", neighbors=None, similarities=None,
             pairs=None, title="Pool map", webgl=None, max_colors=_config.MAX_COLORS, rows=None,
             neighbor_labels=None, max_neighbors=_config.MAP_NEIGHBORS):
    """Scatter of a 2-D projection: one trace per category (the legend), a dropdown choosing the colouring.

    Parameters
    ----------
    coords : (n, 2) array
    frame : pandas.DataFrame, one row per point
        ``text`` and ``category``; ``id``, ``tier``, ``lang``, ``source`` and
        the router's ``predicted``, ``predicted_tier``, ``error`` (see
        :func:`workbench.analysis.tables.map_frame`) are shown when present.
    color_by : sequence of str
        Columns of ``frame`` offered in the dropdown (missing ones are skipped).
    color : str
        The colouring shown first.
    neighbors, similarities : (n, k) arrays, optional
        Nearest neighbours of each point (row positions and cosine, most
        similar first): the share with the same label in the hover, the
        list in the report's neighbour panel and the explorer widget.
    pairs : (i, j) index arrays, optional
        Near-duplicate pairs, drawn as grey links between points.
    webgl : bool, optional
        Draw with WebGL; default from :data:`workbench.config.WEBGL_MIN_POINTS`.
    max_colors : int
        Legend entries per colour field; rarer values share one grey ``other``.
    rows, neighbor_labels : optional
        For a map of a subset of a pool: see :func:`map_points`.
    max_neighbors : int
        Neighbours carried per point at most (each adds to every copy of the figure).
    """
    go = _go()
    coords = np.asarray(coords, np.float32)
    fields = list(dict.fromkeys(["category"] + [c for c in color_by if c in frame]))
    if color not in fields:
        raise ValueError(f"color must be one of {fields}; got {color!r}")
    webgl = len(frame) >= _config.WEBGL_MIN_POINTS if webgl is None else webgl
    scatter = go.Scattergl if webgl else go.Scatter
    cats = frame["category"].astype(str).to_numpy()
    categories = sorted(set(cats) | (set(frame["predicted"].astype(str)) if "predicted" in frame else set()))
    tier_of = dict(zip(cats, frame["tier"].astype(str))) if "tier" in frame else {}
    if neighbors is not None:
        neighbors, similarities = np.asarray(neighbors)[:, :max_neighbors], np.asarray(similarities)[:, :max_neighbors]
        if neighbor_labels is not None:
            neighbor_labels = np.asarray(neighbor_labels, dtype=object)[:, :max_neighbors]
    points = map_points(frame, neighbors, similarities, categories, rows, neighbor_labels)
    fig = go.Figure()
    if pairs is not None and len(pairs[0]):
        i, j = np.asarray(pairs[0]), np.asarray(pairs[1])
        xs = np.column_stack([coords[i, 0], coords[j, 0], np.full(len(i), np.nan, np.float32)]).ravel()
        ys = np.column_stack([coords[i, 1], coords[j, 1], np.full(len(i), np.nan, np.float32)]).ravel()
        fig.add_trace(scatter(x=xs, y=ys, mode="lines", name="near-duplicate link", hoverinfo="skip",
                              line=dict(color="rgba(80,80,80,0.6)", width=1)))
    values = {f: frame[f].astype(str).to_numpy() for f in fields}
    keys = {f: _colors(f, values[f], max_colors) for f in fields}
    cat_key = keys["category"][0]
    members, traces, trace_categories = [], [], {}
    for name in sorted(set(cats)):
        rows = np.flatnonzero(cats == name)
        members.append(rows)
        traces.append(len(fig.data))
        trace_categories[len(fig.data)] = name
        # no shared legendgroup: a legend click hides this category only, a double-click isolates it
        fig.add_trace(scatter(x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=esc(name),
                              customdata=[points[r] for r in rows],
                              hovertemplate=_hovertemplate(name, tier_of.get(name), neighbors),
                              marker=dict(size=6, opacity=0.8, color=cat_key.get(name, OTHER_COLOR))))
    proxies = {}
    for f in fields[1:]:
        proxies[f] = []
        for name, colour in keys[f][0].items():
            proxies[f].append(len(fig.data))
            fig.add_trace(scatter(x=[None], y=[None], mode="markers", name=esc(name), legend="legend2",
                                  showlegend=False, hoverinfo="skip", marker=dict(size=9, color=colour)))
    all_proxies = [t for ts in proxies.values() for t in ts]
    styles = {}
    for f in fields:
        if f == "category":
            styles[f] = {"marker.color": [cat_key.get(trace_categories[t], OTHER_COLOR) for t in traces]}
        else:
            codes, scale, n = _coded(*keys[f], values[f])
            styles[f] = {"marker.color": [codes[rows] for rows in members], "marker.colorscale": [scale],
                         "marker.cmin": -0.5, "marker.cmax": n - 0.5}
    buttons = []
    for f in fields:
        style = styles[f]
        restyle = {"marker.color": [c.tolist() if hasattr(c, "tolist") else c for c in style["marker.color"]]
                   + [fig.data[t].marker.color for t in all_proxies],
                   "showlegend": [True] * len(traces) + [t in proxies.get(f, ()) for t in all_proxies]}
        if f != "category":
            restyle.update({k: v for k, v in style.items() if k != "marker.color"})
        buttons.append(dict(label=f"colour: {f}", method="update",
                            args=[restyle, {"legend2.visible": f != "category", "legend2.title.text": f"colour: {f}",
                                            "legend.title.text": legend_title(f)}, traces + all_proxies]))
    if color != "category":
        for t, c in zip(traces, styles[color]["marker.color"]):
            fig.data[t].marker.update(color=c, colorscale=styles[color]["marker.colorscale"][0], cmin=-0.5,
                                      cmax=styles[color]["marker.cmax"])
        for t in proxies[color]:
            fig.data[t].showlegend = True
    fig.update_layout(
        title=title, height=700, hoverlabel=dict(align="left"), margin=dict(t=100, b=40),
        xaxis=dict(showticklabels=False, title=""), yaxis=dict(showticklabels=False, title=""),
        legend=dict(itemsizing="constant", title=dict(text=legend_title(color))),
        legend2=dict(visible=color != "category", itemclick=False, itemdoubleclick=False, orientation="h", x=0,
                     y=-0.02, yanchor="top", title=dict(text=f"colour: {color}")),
        updatemenus=[dict(buttons=buttons, active=fields.index(color), x=1, xanchor="right", y=1.02,
                          yanchor="bottom")] if len(buttons) > 1 else [],
        meta={"workbench": {"kind": "pool-map", "columns": list(MAP_COLUMNS), "categories": categories,
                            "tiers": {c: tier_of.get(c, "") for c in categories}, "errors": list(ERROR_COLORS),
                            "traces": {str(t): c for t, c in trace_categories.items()},
                            "colors": {f: {"key": keys[f][0], "of": keys[f][1]} for f in fields}}})
    return fig


def label_clusters(fig, keywords, *, max_labels=40):
    """Write each cluster's keywords on a map at its centre (returns ``fig``).

    Parameters
    ----------
    fig : plotly Figure from :func:`plot_map`
    keywords : pandas.DataFrame from :func:`workbench.analysis.keywords.cluster_keywords`
        (``x``, ``y``, ``label``, ``n``); the ``max_labels`` biggest clusters are labelled.
    """
    rows = keywords[keywords["label"] != ""].sort_values("n", ascending=False, kind="stable").head(max_labels)
    for rec in rows.to_dict("records"):
        fig.add_annotation(x=rec["x"], y=rec["y"], text=esc(rec["label"]), showarrow=False, name="cluster keywords",
                           font=dict(size=11, color="#222"), bgcolor="rgba(255,255,255,0.75)", borderpad=2,
                           hovertext=f"{int(rec['n'])} messages")
    return fig


def plot_set_comparison(coords, frame, sets, *, color="category", title="Template set vs written pool",
                        max_colors=_config.MAX_COLORS):
    """Side-by-side maps of named sets projected together (same axes, comparable spread).

    Parameters
    ----------
    coords : (n, 2) array of all points
    frame : pandas.DataFrame, one row per point
    sets : (n,) array of set names; one panel per name, in order of first appearance
    """
    from plotly.subplots import make_subplots

    go = _go()
    coords = np.asarray(coords, np.float32)
    sets = np.asarray(sets, dtype=object)
    names = list(dict.fromkeys(sets))
    points = map_points(frame)
    tier_of = dict(zip(frame["category"].astype(str), frame["tier"].astype(str))) if "tier" in frame else {}
    key, entry_of = _colors(color, frame[color].astype(str).to_numpy(), max_colors)
    entry = np.array([entry_of[v] for v in frame[color].astype(str)], dtype=object)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[f"{esc(n)} ({(sets == n).sum()})" for n in names],
                        shared_xaxes=True, shared_yaxes=True)
    for c, name in enumerate(names, 1):
        for v, colour in key.items():
            rows = np.flatnonzero((sets == name) & (entry == v))
            # one legendgroup per value: a click hides that value in every panel, a double-click isolates it
            fig.add_trace(go.Scatter(x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=esc(v),
                                     legendgroup=v, showlegend=c == 1, customdata=[points[r] for r in rows],
                                     hovertemplate=_hovertemplate(v, tier_of.get(v) if color == "category" else None,
                                                                  None),
                                     marker=dict(size=6, opacity=0.8, color=colour)),
                          row=1, col=c)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(title=title, height=520, hoverlabel=dict(align="left"), legend=dict(itemsizing="constant"))
    return fig


def plot_counts(frame, *, x="category", color="lang", title="Messages per category", max_colors=_config.MAX_COLORS):
    """Stacked bars: messages per ``x`` value, split by ``color`` (rare ``color`` values grouped as "other")."""
    go = _go()
    key, entry = _colors(color, frame[color].astype(str).to_numpy(), max_colors)
    table = frame.groupby([frame[x].astype(str), frame[color].astype(str).map(entry).rename(color)]).size()
    table = table.unstack(fill_value=0)
    order = sorted(table.columns, key=lambda c: (key[c] == OTHER_COLOR, -table[c].sum()))
    fig = go.Figure([go.Bar(x=[esc(v) for v in table.index], y=table[c], name=esc(c), marker_color=key[c])
                     for c in order])
    fig.update_layout(barmode="stack", title=title, xaxis_title=x, yaxis_title="messages", legend_title=color)
    return fig


def plot_length_histogram(frame, *, by="category", nbins=40, title="Message length (characters)"):
    """Overlaid histograms of message length, one per ``by`` value."""
    go = _go()
    lengths = frame["text"].astype(str).str.len()
    key, entry = _colors(by, frame[by].astype(str).to_numpy(), _config.MAX_COLORS)
    groups = frame[by].astype(str).map(entry)
    fig = go.Figure([go.Histogram(x=lengths[groups == v], name=esc(v), nbinsx=nbins, opacity=0.6, marker_color=c)
                     for v, c in key.items()])
    fig.update_layout(barmode="overlay", title=title, xaxis_title="characters", yaxis_title="messages")
    return fig
