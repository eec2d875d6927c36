"""Merge labelled real messages into a new pool file (never rewriting an existing one).

Every text and id is scrubbed (:mod:`.scrub`) on its way into the pool, whatever path it took to get here.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..errors import ConfigError, DataError
from ..core.text import has_visible_text
from ..io import atomic_file, normalize_text, read_jsonl
from .scrub import scrub_id, scrub_text

log = logging.getLogger(__name__)

__all__ = ["merge_labelled", "default_merge_path"]

#: Candidate fields carried into the pool file besides the required ones.
KEEP_FIELDS = ("conversation", "turn", "origin")


def _keep(key, value):
    """A carried field as the pool stores it: contact details in an id or an origin become a hash."""
    if key == "turn":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if key == "origin":
        name, sep, line = str(value).rpartition(":")
        return f"{scrub_id(name, 'file')}:{line}" if sep and line.isdigit() else scrub_id(value, "file")
    return scrub_id(value, "conv")


def default_merge_path(pool_dir=None):
    """``<pool dir>/real-<UTC date>.jsonl``."""
    from ..config import POOL_DIR

    return Path(pool_dir or POOL_DIR) / f"real-{time.strftime('%Y-%m-%d', time.gmtime())}.jsonl"


def merge_labelled(labelled, out=None, *, pool=None, taxonomy=None, label_source=None):
    """Write labelled candidates as a new pool file with ``source: "real"``.

    Parameters
    ----------
    labelled : path
        JSONL from ``workbench label`` (``id``, ``text``, ``category``,
        ``label_source``, ``lang``).
    out : path, optional
        The new pool file (default :func:`default_merge_path`); it must not
        exist, and is created exclusively: of two merges to one file, one fails
        and none loses rows.
    pool : path or list, optional
        Existing pool sources (default ``data/pool``): an id that collides
        with one of them is an error; a text already there is skipped.
    label_source : str, optional
        Overrides each row's ``label_source`` (the model name).

    Returns
    -------
    dict with ``written``, ``skipped_in_pool``, ``out``.
    """
    from ..core.taxonomy import load_taxonomy
    from ..dataset.pool import load_pool

    taxonomy = taxonomy or load_taxonomy()
    out = Path(out or default_merge_path(pool if isinstance(pool, (str, Path)) and Path(pool).is_dir() else None))
    if out.exists():
        raise ConfigError(f"out must be a new file (pool files are never rewritten); {out} exists")
    frame = load_pool(pool, taxonomy).frame
    pool_ids = {str(i): f"{f}:{n}" for i, f, n in zip(frame["id"], frame["file"], frame["line"])}
    pool_text = {normalize_text(t) for t in frame["text"]}
    lines, seen, skipped = [], set(), 0
    for n, obj in read_jsonl(labelled):
        for key in ("id", "text", "category"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise DataError(labelled, n, f"missing or empty {key!r}")
        if not has_visible_text(obj["text"]):
            raise DataError(labelled, n, "'text' has no visible characters")
        for key in ("label_source", "lang"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise DataError(labelled, n, f"{key!r} must be a string, got {type(obj[key]).__name__}")
        if obj["category"] not in taxonomy.tier_map:
            raise DataError(labelled, n, f"unknown category {obj['category']!r} (known: {', '.join(taxonomy.categories)})")
        source = label_source or obj.get("label_source")
        if not source:
            raise DataError(labelled, n, "missing 'label_source' (the labelling model): pass label_source")
        if obj["id"] in pool_ids:
            raise DataError(labelled, n, f"id {obj['id']!r} already in the pool at {pool_ids[obj['id']]}")
        if obj["id"] in seen:
            raise DataError(labelled, n, f"duplicate id {obj['id']!r}")
        seen.add(obj["id"])
        if normalize_text(obj["text"]) in pool_text:
            skipped += 1
            continue
        row = {"id": scrub_id(obj["id"], "msg"), "text": scrub_text(obj["text"])[0], "category": obj["category"],
               "source": "real", "lang": obj.get("lang") or "und", "label_source": source}
        row.update({k: v for k in KEEP_FIELDS if obj.get(k) is not None and (v := _keep(k, obj[k])) is not None})
        lines.append(json.dumps(row, ensure_ascii=False, allow_nan=False))
    if not lines:
        raise DataError(labelled, None, "no labelled messages to merge")
    try:
        with atomic_file(out, exclusive=True) as fh:
            fh.write("".join(line + "\n" for line in lines).encode("utf-8"))
    except FileExistsError:
        raise ConfigError(f"out must be a new file (pool files are never rewritten); {out} was created by "
                          "another run meanwhile") from None
    log.info("merged %d labelled message(s) into %s", len(lines), out)
    return {"written": len(lines), "skipped_in_pool": skipped, "out": str(out)}
