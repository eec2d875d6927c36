"""What notebooks call to publish results: headline numbers, figures and tables of a report folder.

``index.html`` is built from what these write (``metrics.json``,
``figures/*.json``, ``tables/*.json``).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import ConfigError
from ..io import write_text_atomic

__all__ = ["jsonable", "record_metrics", "record_figure", "record_table"]


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


def record_figure(output_dir, name, fig):
    """Save a plotly figure as ``<output_dir>/figures/<name>.json`` for index.html."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"figure name must be letters, digits, '_', '.' or '-'; got {name!r}")
    write_text_atomic(Path(output_dir) / "figures" / f"{name}.json", fig.to_json())


def record_table(output_dir, name, table, *, title=None, max_rows=20):
    """Save a DataFrame's first rows as ``<output_dir>/tables/<name>.json`` for index.html."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"table name must be letters, digits, '_', '.' or '-'; got {name!r}")
    t = table.head(max_rows).reset_index() if table.index.name else table.head(max_rows)
    payload = {"title": title or name, "columns": [str(c) for c in t.columns],
               "rows": jsonable(t.astype(object).where(t.notna(), None).to_numpy().tolist())}
    write_text_atomic(Path(output_dir) / "tables" / f"{name}.json", json.dumps(payload, ensure_ascii=False))
