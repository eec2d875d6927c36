"""What notebooks call to publish results: headline numbers, figures and tables of a report folder.

``index.html`` is built from what these write (``metrics.json``,
``figures/*.js``, ``tables/*.json``). A recorded figure is a small script
that registers the figure's JSON (``window.WB_FIGURES[name] = {...}``):
report pages load it with a ``<script src>``, which works from the file
system where reading a JSON file would not, and the index and the notebook
page that showed the figure share that one copy.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from ..errors import ConfigError
from ..io import write_text_atomic

__all__ = ["jsonable", "record_metrics", "record_figure", "read_figure", "figure_script", "record_table", "read_table",
           "script_json", "default_template", "without_default_template"]

_FIGURE_PREFIX = "(window.WB_FIGURES = window.WB_FIGURES || {})[NAME] = "


def jsonable(v):
    """``v`` with numpy scalars and arrays, paths and NaN turned into plain JSON values."""
    import numpy as np

    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, float) and v != v:
        return None  # NaN is not JSON
    if isinstance(v, Path):
        return str(v)
    return v


def record_metrics(output_dir, section, mapping, *, replace=False):
    """Merge ``mapping`` into section ``section`` of ``<output_dir>/metrics.json`` (atomically).

    With ``replace`` the section is replaced instead. Returns the whole
    metrics dict after the update.
    """
    path = Path(output_dir) / "metrics.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if replace:
        data.pop(section, None)
    data.setdefault(section, {}).update(jsonable(dict(mapping)))
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))
    return data


def script_json(obj):
    """Compact JSON of ``obj`` that is safe inside an HTML ``<script>`` element.

    ``</`` and ``<!--`` are escaped (``<\\/``, ``\\u003c!--``): the JSON stays
    valid and cannot close the element or open a comment, whatever text it
    holds; everything else stays as it is (``<br>`` in hover text costs 4
    bytes, not 14).
    """
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
            .replace("</", "<\\/").replace("<!--", "\\u003c!--"))


@functools.lru_cache(maxsize=1)
def default_template():
    """The plotly template every figure carries by default, as JSON (7 KB in each figure; do not modify)."""
    import plotly.graph_objects as go

    return json.loads(go.Figure().to_json())["layout"].get("template")


def without_default_template(figure, template=None):
    """``figure`` (a dict) without ``layout.template`` when that is the default one.

    Report pages load the default template once (``assets/template.js``) and
    give it to every figure that has none.
    """
    template = default_template() if template is None else template
    layout = figure.get("layout", {})
    if layout.get("template") != template:
        return figure
    return {**figure, "layout": {k: v for k, v in layout.items() if k != "template"}}


def figure_script(name, figure):
    """The text of ``figures/<name>.js`` for a figure dict (``data``, ``layout``; the default template left out)."""
    body = json.dumps(without_default_template(figure), ensure_ascii=False, separators=(",", ":"))
    return _FIGURE_PREFIX.replace("NAME", json.dumps(name)) + body + ";\n"


def record_figure(output_dir, name, fig):
    """Save a plotly figure as ``<output_dir>/figures/<name>.js`` for the report pages; returns ``fig``.

    Returning the figure lets a notebook cell record and show it in one line.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"figure name must be letters, digits, '_', '.' or '-'; got {name!r}")
    from ..plots._base import sized

    figure = json.loads(sized(fig).to_json())
    write_text_atomic(Path(output_dir) / "figures" / f"{name}.js", figure_script(name, figure))
    return fig


def read_figure(path):
    """The figure dict (``data``, ``layout``) of a ``figures/<name>.js`` file (without the default template)."""
    text = Path(path).read_text(encoding="utf-8")
    prefix = _FIGURE_PREFIX.replace("NAME", json.dumps(Path(path).stem))
    if not text.startswith(prefix):
        raise ConfigError(f"{path}: not a recorded figure (it must start with {prefix!r})")
    return json.loads(text[len(prefix):].rstrip().rstrip(";"))


def record_table(output_dir, name, table, *, title=None, max_rows=None):
    """Save a DataFrame (all rows, or its first ``max_rows``) as ``<output_dir>/tables/<name>.json`` for index.html.

    Returns ``table``, so a notebook cell can record and show it in one line.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"table name must be letters, digits, '_', '.' or '-'; got {name!r}")
    rows = table if max_rows is None else table.head(max_rows)
    t = rows.reset_index() if table.index.name else rows
    payload = {"title": title or name, "columns": [str(c) for c in t.columns],
               "rows": jsonable(t.astype(object).where(t.notna(), None).to_numpy().tolist())}
    write_text_atomic(Path(output_dir) / "tables" / f"{name}.json", json.dumps(payload, ensure_ascii=False))
    return table


def read_table(output_dir, name):
    """A table :func:`record_table` saved in ``output_dir`` as a DataFrame, or None when there is none."""
    import pandas as pd

    path = Path(output_dir) / "tables" / f"{name}.json"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not path.exists():
        return None
    payload = json.loads(path.read_text(encoding="utf-8"))
    return pd.DataFrame(payload["rows"], columns=payload["columns"])
