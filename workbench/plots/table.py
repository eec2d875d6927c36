"""Tables as sortable HTML: every row reachable (a scroll box, not a truncated plotly table), a click on a
header sorts, and every cell HTML-escaped.

:func:`sortable_table` returns an object notebooks display (JupyterLab and
the report pages run the small sorting script that comes with it;
without scripts the table is still complete, only not sortable).
:func:`table_html` gives the bare HTML for pages that load ``table.js``
themselves (the report index).
"""
from __future__ import annotations

import html
import math
import re
from importlib import resources

__all__ = ["SortableTable", "sortable_table", "table_html", "static_file"]


def static_file(name):
    """Text of a file of ``workbench/plots/static`` (the scripts and styles of report pages and tables)."""
    return resources.files("workbench.plots").joinpath("static", name).read_text(encoding="utf-8")


def _cell(value, cls=""):
    """``<td>`` of one value: numbers formatted and sortable by their value, lists and dicts as short text."""
    td = f"<td class='{cls}'" if cls else "<td"
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()  # numpy scalars -> Python
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{td}></td>"
    if isinstance(value, bool):
        return f"{td}>{'yes' if value else 'no'}</td>"
    if isinstance(value, (int, float)):
        shown = f"{value:,.4g}" if isinstance(value, float) else f"{value:,}"
        return f"{td} data-sort='{value!r}'>{html.escape(shown)}</td>"
    if isinstance(value, (list, tuple)):
        value = "; ".join(_short(v) for v in value)
    return f"{td}>{html.escape(str(value))}</td>"


def _column_class(name):
    """``wb-col-<name>`` for a plain column name (the style sheet keeps short columns such as ids on one line)."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "", str(name))
    return f"wb-col-{slug}" if slug else ""


def _short(v):
    if isinstance(v, dict):  # e.g. a neighbour: {"id", "text", "category", "similarity"}
        parts = [f"{v['similarity']:.2f}" if isinstance(v.get("similarity"), float) else "",
                 f"[{v['category']}]" if "category" in v else "", str(v.get("id", "")), str(v.get("text", ""))[:80]]
        return " ".join(p for p in parts if p)
    return str(v)


def table_html(frame, *, title=None, max_height="28em", index=None):
    """A ``<table class="wb-table wb-sortable">`` of every row of ``frame`` in a scroll box, escaped.

    Parameters
    ----------
    frame : pandas.DataFrame
    title : str, optional
        A caption above the table (escaped).
    max_height : str
        CSS height of the scroll box.
    index : bool, optional
        Show the index as the first column (default: when it is named or not a plain range).
    """
    import pandas as pd

    if index is None:
        index = frame.index.name is not None or not isinstance(frame.index, pd.RangeIndex)
    t = frame.reset_index() if index else frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    classes = [_column_class(c) for c in t.columns]
    body = "".join("<tr>" + "".join(_cell(v, c) for v, c in zip(row, classes)) + "</tr>"
                   for row in t.itertuples(index=False, name=None))
    if not len(t):
        body = f"<tr><td colspan='{max(1, len(t.columns))}'>(none)</td></tr>"
    caption = f"<p class='wb-caption'>{html.escape(str(title))} ({len(t):,} rows)</p>" if title else ""
    return (f"{caption}<div class='wb-table-wrap' style='max-height:{html.escape(max_height)};overflow:auto'>"
            f"<table class='wb-table wb-sortable'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


class SortableTable:
    """A DataFrame shown as a sortable HTML table with every row reachable.

    Parameters
    ----------
    frame : pandas.DataFrame
    title : str, optional
    max_height : str
        CSS height of the scroll box.
    """

    def __init__(self, frame, *, title=None, max_height="28em"):
        self.frame = frame
        self.title = title
        self.max_height = max_height

    def _repr_html_(self):
        style = static_file("workbench.css")
        return (f"<style>{style}</style>" + table_html(self.frame, title=self.title, max_height=self.max_height)
                + f"<script>{static_file('table.js')}</script>")

    def __repr__(self):
        return repr(self.frame)


def sortable_table(frame, *, title=None, max_height="28em"):
    """``frame`` as a :class:`SortableTable` (display it: a notebook cell's last expression)."""
    return SortableTable(frame, title=title, max_height=max_height)
