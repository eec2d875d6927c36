"""What every plot module shares: the plotly import, the palettes and escaping of user text."""
from __future__ import annotations

import html

from ..errors import require

__all__ = ["go", "esc", "clip", "PALETTE", "TIER_COLORS"]

#: One colour per sorted value, the same in every map (plotly's default qualitative colours).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
TIER_COLORS = {"cheap": "#2ca02c", "medium": "#1f77b4", "strong": "#d62728"}


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
