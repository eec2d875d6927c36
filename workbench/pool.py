"""Read and validate pool sources: JSONL files of labelled messages.

Each line is an object with ``id``, ``text``, ``category``, ``source``,
``lang`` and ``label_source``; other fields are kept as extra columns.
Bad input raises :class:`~workbench.errors.DataError` naming the file, the
line and the problem. Exact duplicates (after whitespace and case
normalisation) are dropped and reported, never silently.
"""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from pathlib import Path

from .errors import DataError

log = logging.getLogger(__name__)

__all__ = ["REQUIRED_FIELDS", "normalize_text", "parse_jsonl", "read_jsonl", "pool_files", "load_pool"]

REQUIRED_FIELDS = ("id", "text", "category", "source", "lang", "label_source")
_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The form used to detect exact duplicates: NFKC, case-folded, whitespace collapsed."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def parse_jsonl(lines, name):
    """Yield ``(line_number, object)`` for each non-blank line; ``name`` is used in errors.

    Raises
    ------
    DataError
        On invalid JSON or a line that is not a JSON object.
    """
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(name, n, f"invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(name, n, f"expected a JSON object, got {type(obj).__name__}")
        yield n, obj


def read_jsonl(path):
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file.

    Raises
    ------
    DataError
        On unreadable files, invalid JSON, or a line that is not a JSON object.
    """
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8")
    except OSError as e:
        raise DataError(path, None, f"cannot read ({e.strerror})") from None
    with fh:
        try:
            yield from parse_jsonl(fh, path)
        except UnicodeDecodeError as e:
            raise DataError(path, None, f"not UTF-8 ({e.reason})") from None


def pool_files(pool_dir=None):
    """The ``*.jsonl`` files of a pool directory, sorted by name."""
    from .config import POOL_DIR

    pool_dir = Path(pool_dir or POOL_DIR)
    if pool_dir.is_file():
        return [pool_dir]
    files = sorted(pool_dir.glob("*.jsonl"))
    if not files:
        raise DataError(pool_dir, None, "no *.jsonl pool files found")
    return files


def load_pool(paths=None, taxonomy=None, *, required=REQUIRED_FIELDS):
    """Load pool sources into a DataFrame.

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
    pandas.DataFrame
        One row per kept message, with the required fields, any extra
        fields, ``tier``, ``file`` and ``line``. ``frame.attrs["dropped"]``
        lists the exact duplicates that were dropped (``id``, ``kept_id``,
        ``file``, ``line``).
    """
    import pandas as pd

    from .taxonomy import load_taxonomy

    taxonomy = taxonomy or load_taxonomy()
    if paths is None or isinstance(paths, (str, Path)):
        paths = [paths]
    files = [f for p in paths for f in pool_files(p)]
    rows, seen_ids, seen_text, dropped = [], {}, {}, []
    for path in files:
        for n, obj in read_jsonl(path):
            for key in required:
                value = obj.get(key)
                if value is None or (isinstance(value, str) and not value.strip()):
                    raise DataError(path, n, f"missing or empty {key!r}")
            text = obj.get("text")
            if not isinstance(text, str):
                raise DataError(path, n, f"'text' must be a string, got {type(text).__name__}")
            if "category" in obj and obj["category"] not in taxonomy.tier_map:
                raise DataError(path, n, f"unknown category {obj['category']!r} (known: {', '.join(taxonomy.categories)})")
            mid = str(obj.get("id", f"{Path(path).stem}:{n}"))
            if mid in seen_ids:
                raise DataError(path, n, f"duplicate id {mid!r} (first at {seen_ids[mid]})")
            seen_ids[mid] = f"{path}:{n}"
            key = normalize_text(text)
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
    frame = pd.DataFrame(rows)
    if "category" in frame:
        frame["tier"] = frame["category"].map(taxonomy.tier_map)
    frame.attrs["dropped"] = dropped
    frame.attrs["files"] = [str(f) for f in files]
    return frame.reset_index(drop=True)
