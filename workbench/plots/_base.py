"""What every plot module shares: the plotly import, the palettes, axis formats and escaping of user text."""
from __future__ import annotations

import html

from .. import config as _config
from ..errors import require

__all__ = ["go", "esc", "clip", "wrap", "PALETTE", "TIER_COLORS", "OTHER_COLOR", "PCT_AXIS", "color_key",
           "FIGURE_HEIGHT", "sized"]

#: One colour per sorted value, the same in every map (plotly's default qualitative colours, then D3's
#: paired lighter shades): 20 colours, none repeated.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
           "#9edae5", "#393b79")
TIER_COLORS = {"cheap": "#2ca02c", "medium": "#1f77b4", "strong": "#d62728"}
#: The colour of the values grouped as "other" (light grey, unlike every palette colour).
OTHER_COLOR = "#c7c7c7"
#: Tick labels of a share axis: up to two decimals, trailing zeros trimmed, so no two ticks read the same
#: ("85%", "85.5%", "86%" on a narrow range; "20%", "40%" on a wide one).
PCT_AXIS = ".2~%"
#: The height (px) of a figure that does not set its own: a report page draws a figure without a height at its
#: box's height (100 px once), JupyterLab at 360 px. ``plots/static/figures.js`` uses the same number.
FIGURE_HEIGHT = 420


def sized(fig, height=FIGURE_HEIGHT):
    """``fig`` with an explicit height when it has none (returns it)."""
    if fig.layout.height is None:
        fig.layout.height = height
    return fig


def go():
    """``plotly.graph_objects``, or a one-line install hint."""
    return require("plotly.graph_objects", purpose="figures")


def esc(value):
    """HTML-escaped text of any value (hover labels and table cells render HTML)."""
    return html.escape(str(value))


def clip(text, width):
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def wrap(escaped, width=80):
    """Insert ``<br>`` into already escaped text so a hover label stays narrow.

    Breaks go after a space where there is one in the last third of a line,
    else mid-word (Chinese and Japanese have no spaces). Escaped text holds
    no ``<`` of its own, so removing every ``<br>`` gives the input back.
    """
    out, line = [], ""
    for ch in escaped:
        line += ch
        if len(line) >= width:
            cut = line.rfind(" ", width * 2 // 3)
            cut = len(line) if cut < 0 else cut + 1
            out.append(line[:cut])
            line = line[cut:]
    out.append(line)
    return "<br>".join(part for part in out if part)


def color_key(values, *, max_colors=_config.MAX_COLORS, min_count=_config.COLOR_MIN_COUNT, other="other"):
    """A colour for each distinct value; past ``max_colors`` the rarest share one grey ``other`` entry.

    Parameters
    ----------
    values : sequence of str
    max_colors : int
        Distinct colours at most for values rarer than ``min_count``.
    min_count : int
        A value with at least this many occurrences always gets its own colour
        (as far as the palette reaches: ``len(PALETTE)`` is the ceiling), so
        no slice big enough to be judged hides in ``other``.

    Returns
    -------
    key : dict value -> colour, in legend order (sorted, ``other (n values)`` last)
    names : dict value -> the legend entry it belongs to (itself, or the ``other`` entry)
    """
    from collections import Counter

    counts = Counter(str(v) for v in values)
    ranked = [v for v, _ in sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))]
    limit = min(int(max_colors), len(PALETTE))
    if len(counts) <= limit:
        kept = sorted(counts)
    else:
        big = sum(counts[v] >= min_count for v in ranked)
        kept = sorted(ranked[:min(len(PALETTE) - 1, max(limit - 1, big))])
    key = {v: PALETTE[i] for i, v in enumerate(kept)}
    names = {v: v for v in kept}
    rest = [v for v in counts if v not in key]
    if rest:
        label = f"{other} ({len(rest)} values)"
        key[label] = OTHER_COLOR
        names.update({v: label for v in rest})
    return key, names
