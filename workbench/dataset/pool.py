"""Read and validate pool sources: JSONL files of labelled messages.

Each line is an object with ``id``, ``text``, ``category``, ``source``,
``lang`` and ``label_source``; other fields are kept as extra columns.
Bad input raises :class:`~workbench.errors.DataError` naming the file, the
line and the problem. Exact duplicates (after whitespace and case
normalisation) are dropped and reported, never silently.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..core.text import has_visible_text
from ..errors import DataError
from ..io import normalize_text, parse_json, read_text_file

log = logging.getLogger(__name__)

__all__ = ["REQUIRED_FIELDS", "LoadedPool", "pool_files", "load_pool", "check_sources"]

REQUIRED_FIELDS = ("id", "text", "category", "source", "lang", "label_source")
#: Columns of :attr:`LoadedPool.dropped`.
DROPPED_COLUMNS = ("id", "kept_id", "file", "line", "same_label")


@dataclass
class LoadedPool:
    """Pool sources read and validated.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per kept message: the record's fields, ``tier``, ``file`` and ``line``.
    dropped : list of dict
        Exact duplicates dropped after normalisation (``id, kept_id, file, line, same_label``).
    files : list of str
        The files read, in order.
    """

    frame: object
    dropped: list = field(default_factory=list)
    files: list = field(default_factory=list)

    def dropped_table(self):
        """:attr:`dropped` as a DataFrame (empty with its columns when nothing was dropped)."""
        import pandas as pd

        return pd.DataFrame(self.dropped, columns=list(DROPPED_COLUMNS))


def pool_files(pool_dir=None):
    """The ``*.jsonl`` files of a pool directory, sorted by name."""
    from ..config import POOL_DIR

    pool_dir = Path(pool_dir or POOL_DIR)
    if pool_dir.is_file():
        return [pool_dir]
    files = sorted(pool_dir.glob("*.jsonl"))
    if not files:
        raise DataError(pool_dir, None, "no *.jsonl pool files found")
    return files


def _lines(path):
    """``(line, object or None, problem or None)`` for each non-blank line; never raises on content."""
    try:
        text = read_text_file(path)
    except DataError as e:
        yield e.line, None, e.problem
        return
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        obj, problem = parse_json(line)
        if problem:
            yield n, None, problem
            continue
        if not isinstance(obj, dict):
            yield n, None, f"expected a JSON object, got {type(obj).__name__}"
            continue
        yield n, obj, None


#: Fields whose value must be a string when present (they are compared, hashed and written back).
_STRING_FIELDS = ("id", "text", "category", "source", "lang", "label_source")


def _field_problem(obj, required, taxonomy):
    """What is wrong with a record's fields (types first, so no unhashable value reaches a lookup), or None."""
    missing = [k for k in dict.fromkeys(("text",) + tuple(required))
               if obj.get(k) is None or (isinstance(obj.get(k), str) and not obj[k].strip())]
    if missing:
        return f"missing or empty {', '.join(map(repr, missing))}"
    for k in _STRING_FIELDS:
        if k in obj and obj[k] is not None and not isinstance(obj[k], str) and not (k == "id" and _plain_id(obj[k])):
            return f"{k!r} must be a string, got {type(obj[k]).__name__}"
    if "text" in obj and not has_visible_text(obj["text"]):
        return "'text' has no visible characters"
    return None


def _plain_id(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _records(files, taxonomy, required):
    """``(path, line, record, problem)`` for every line of the pool files, validated one rule at a time."""
    seen_ids = {}
    for path in files:
        for n, obj, problem in _lines(path):
            if problem is None:
                problem = _field_problem(obj, required, taxonomy)
            if problem is None:
                if "category" in obj and obj["category"] not in taxonomy.tier_map:
                    problem = f"unknown category {obj['category']!r} (known: {', '.join(taxonomy.categories)})"
                else:
                    mid = str(obj.get("id", f"{Path(path).stem}:{n}"))
                    if mid in seen_ids:
                        problem = f"duplicate id {mid!r} (first at {seen_ids[mid]})"
                    else:
                        seen_ids[mid] = f"{path}:{n}"
            yield path, n, obj, problem


def _files(paths):
    if paths is None or isinstance(paths, (str, Path)):
        paths = [paths]
    return [f for p in paths for f in pool_files(p)]


def load_pool(paths=None, taxonomy=None, *, required=REQUIRED_FIELDS) -> LoadedPool:
    """Load pool sources, stopping at the first bad line.

    Parameters
    ----------
    paths : path, directory or list of them, optional
        JSONL files or directories of them; defaults to ``data/pool``.
    taxonomy : Taxonomy, optional
        Categories must belong to it; defaults to ``data/taxonomy.yaml``.
    required : tuple of str
        Fields every line must carry with a non-empty value.

    Returns
    -------
    LoadedPool
        The frame (one row per kept message, with the required fields, any
        extra fields, ``tier``, ``file`` and ``line``) and the exact
        duplicates that were dropped.

    Raises
    ------
    DataError
        Naming the file, the line and the problem.
    """
    import pandas as pd

    from ..core.taxonomy import load_taxonomy

    taxonomy = taxonomy or load_taxonomy()
    files = _files(paths)
    rows, seen_text, dropped = [], {}, []
    for path, n, obj, problem in _records(files, taxonomy, required):
        if problem:
            raise DataError(path, n, problem)
        mid = str(obj.get("id", f"{Path(path).stem}:{n}"))
        key = normalize_text(obj["text"])
        if key in seen_text:
            kept = seen_text[key]
            dropped.append({"id": mid, "kept_id": kept["id"], "file": str(path), "line": n,
                            "same_label": kept.get("category") == obj.get("category")})
            continue
        row = dict(obj, id=mid, file=str(path), line=n)
        seen_text[key] = row
        rows.append(row)
    if dropped:
        log.warning("dropped %d exact duplicate message(s) after normalisation: %s", len(dropped),
                    ", ".join(f"{d['id']} (= {d['kept_id']})" for d in dropped[:5]) + (" ..." if len(dropped) > 5 else ""))
    if not rows:
        raise DataError(files[0] if len(files) == 1 else ", ".join(map(str, files)), None, "no messages in the pool")
    frame = pd.DataFrame(rows)
    if "category" in frame:
        frame["tier"] = frame["category"].map(taxonomy.tier_map)
    return LoadedPool(frame.reset_index(drop=True), dropped, [str(f) for f in files])


def check_sources(paths=None, taxonomy=None, *, required=REQUIRED_FIELDS):
    """Every problem in the pool sources, one row each, without stopping at the first.

    The same rules as :func:`load_pool`, which stops at the first of these.

    Returns
    -------
    pandas.DataFrame with ``file, line, id, problem`` (empty when all is well).
    """
    import pandas as pd

    from ..core.taxonomy import load_taxonomy

    taxonomy = taxonomy or load_taxonomy()
    rows = [{"file": str(path), "line": n, "id": None if obj is None else obj.get("id"), "problem": problem}
            for path, n, obj, problem in _records(_files(paths), taxonomy, required) if problem]
    return pd.DataFrame(rows, columns=["file", "line", "id", "problem"])
