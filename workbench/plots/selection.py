"""Which map points a box or lasso outline holds, computed from the outline alone.

A mouse selection in a live ``FigureWidget`` reaches the kernel as the
layout's ``selections`` (the outline plotly draws: a rectangle, or an SVG path
for a lasso), which plotly.js reports on every drag and on a double-click that
clears it. Its ``plotly_selected`` point event is not forwarded to the kernel
by the plotly 6/7 widget, so the explorer reads the outline and finds the
points inside it here (numpy, no plotly).
"""
from __future__ import annotations

import re

import numpy as np

__all__ = ["points_in_outline", "points_in_selections", "path_polygon"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def path_polygon(path):
    """The vertices of an SVG path of straight segments (``M x,y L x,y ... Z``) as an (n, 2) array."""
    nums = [float(v) for v in re.findall(_NUMBER, str(path))]
    if len(nums) < 6 or len(nums) % 2:
        return np.empty((0, 2))
    return np.asarray(nums, float).reshape(-1, 2)


def points_in_outline(x, y, polygon):
    """Mask of the points inside a polygon (even-odd rule, as plotly's lasso; vectorised over points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    inside = np.zeros(len(x), bool)
    if len(polygon) < 3:
        return inside
    xj, yj = polygon[-1]
    for xi, yi in polygon:
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < at)
        xj, yj = xi, yi
    return inside


def _get(sel, key):
    return sel.get(key) if isinstance(sel, dict) else getattr(sel, key, None)


def points_in_selections(x, y, selections):
    """Mask of the points inside any of plotly's selection outlines (``layout.selections``).

    Parameters
    ----------
    x, y : (n,) arrays of data coordinates
    selections : sequence of dicts or plotly ``Selection`` objects
        ``type`` ``"rect"`` with ``x0, x1, y0, y1``, or ``"path"`` with an
        SVG ``path``; an empty sequence selects nothing.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.zeros(len(x), bool)
    for sel in selections or ():
        if _get(sel, "type") == "path" or (_get(sel, "path") and _get(sel, "x0") is None):
            keep |= points_in_outline(x, y, path_polygon(_get(sel, "path")))
            continue
        corners = [_get(sel, k) for k in ("x0", "x1", "y0", "y1")]
        if any(c is None for c in corners):
            continue
        x0, x1, y0, y1 = map(float, corners)
        keep |= (x >= min(x0, x1)) & (x <= max(x0, x1)) & (y >= min(y0, y1)) & (y <= max(y0, y1))
    return keep
