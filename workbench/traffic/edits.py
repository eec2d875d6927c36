"""Label edits made on a map: a review file of (id, old label, new label, who, when, note), applied to a copy of
the pool with provenance.

The explorers (:class:`workbench.plots.MapExplorer`, the report's map) append
edits with :func:`record_edits`; ``workbench merge --edits FILE --out DIR``
calls :func:`apply_edits`, which writes every pool source into a new folder
(never in place) with the edited lines changed and marked, returns a summary,
and refuses the whole file when the pool changed since an edit was made (its
message is gone, its text changed, or its label is no longer the old label).
"""
from __future__ import annotations

import getpass
import json
import logging
import time
from pathlib import Path

from ..errors import ConfigError, DataError
from ..io import normalize_text, read_jsonl, write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["EDIT_FIELDS", "record_edits", "read_edits", "apply_edits", "default_edits_out", "format_summary"]

#: One edit: the message, its label when the edit was made, the new label, who and when (UTC), a note, and the
#: message text (to notice a pool that changed since).
EDIT_FIELDS = ("id", "old_label", "new_label", "who", "when", "note", "text")


def record_edits(rows, new_label, path, *, who=None, note="", categories=None):
    """Append one edit per row (``id``, ``text``, ``category``) to the review file ``path``; returns how many.

    Rows already labelled ``new_label`` are skipped. The file is rewritten
    atomically with the earlier edits first; a later edit of a message wins.
    """
    if categories is not None and new_label not in categories:
        raise ConfigError(f"new_label must be one of {', '.join(categories)}; got {new_label!r}")
    who = who or getpass.getuser()
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    new = [{"id": str(r["id"]), "old_label": str(r["category"]), "new_label": str(new_label), "who": who,
            "when": when, "note": str(note or ""), "text": str(r["text"])}
           for r in rows.to_dict("records") if str(r["category"]) != str(new_label)]
    if not new:
        return 0
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    write_text_atomic(path, old + "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in new))
    log.info("recorded %d label edit(s) in %s", len(new), path)
    return len(new)


def read_edits(path, categories):
    """The edits of a review file, checked line by line; the last edit of an id wins. Returns ``{id: edit}``."""
    edits = {}
    for n, obj in read_jsonl(path):
        for key in ("id", "old_label", "new_label", "text"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise DataError(path, n, f"an edit needs a non-empty string {key!r}")
        if obj["new_label"] not in categories:
            raise DataError(path, n, f"unknown new_label {obj['new_label']!r} (known: {', '.join(categories)})")
        obj["line"] = n
        edits[obj["id"]] = obj
    if not edits:
        raise DataError(path, None, "no label edits in the file")
    return edits


def _stale(edit, current, path):
    """Why an edit no longer fits the pool (None when it does)."""
    where = f"{path}:{edit['line']}: id {edit['id']!r}"
    if current is None:
        return f"{where} is no longer in the pool"
    if normalize_text(current["text"]) != normalize_text(edit["text"]):
        return f"{where} has another text in the pool now"
    if current["category"] != edit["old_label"]:
        return f"{where} is labelled {current['category']!r} in the pool now, not {edit['old_label']!r}"
    return None


def _edited(obj, edit):
    row = dict(obj, category=edit["new_label"], label_source="review")
    row["review"] = {k: edit.get(k, "") for k in ("old_label", "who", "when", "note")}
    row["review"]["was_label_source"] = obj.get("label_source", "")
    return row


def apply_edits(edits_path, out_dir, *, pool_dir=None, taxonomy=None):
    """Write the pool with the edits applied into the new folder ``out_dir``; the pool itself is not touched.

    Returns
    -------
    dict with ``edits`` (applied), ``files`` (``{file name: edits}``),
    ``changes`` (``{"old -> new": count}``) and ``out``.

    Raises
    ------
    ConfigError
        When ``out_dir`` exists, or the pool changed since an edit (every
        stale edit is named; nothing is written).
    """
    from ..config import POOL_DIR
    from ..core.taxonomy import load_taxonomy

    taxonomy = taxonomy or load_taxonomy()
    pool_dir, out_dir = Path(pool_dir or POOL_DIR), Path(out_dir)
    if out_dir.exists():
        raise ConfigError(f"out must be a new folder (the pool is never edited in place); {out_dir} exists")
    edits = read_edits(edits_path, taxonomy.categories)
    files = sorted(pool_dir.glob("*.jsonl"))
    sources = {f: list(read_jsonl(f)) for f in files}
    current = {str(obj.get("id")): obj for rows in sources.values() for _, obj in rows}
    stale = [why for e in edits.values() if (why := _stale(e, current.get(e["id"]), edits_path))]
    if stale:
        raise ConfigError(f"the pool changed since {len(stale)} edit(s) were made; nothing merged: " + "; ".join(stale[:5]))
    summary = {"edits": 0, "files": {}, "changes": {}, "out": str(out_dir)}
    out_dir.mkdir(parents=True)
    for f, rows in sources.items():
        lines = []
        for _, obj in rows:
            edit = edits.get(str(obj.get("id")))
            if edit:
                obj = _edited(obj, edit)
                summary["edits"] += 1
                summary["files"][f.name] = summary["files"].get(f.name, 0) + 1
                change = f"{edit['old_label']} -> {edit['new_label']}"
                summary["changes"][change] = summary["changes"].get(change, 0) + 1
            lines.append(json.dumps(obj, ensure_ascii=False) + "\n")
        write_text_atomic(out_dir / f.name, "".join(lines))
    log.info("applied %d label edit(s) into %s", summary["edits"], out_dir)
    return summary


def default_edits_out():
    """``data/interim/pool-edited-<UTC time>``: a new folder per merge."""
    from ..config import INTERIM_DIR

    return INTERIM_DIR / f"pool-edited-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def format_summary(summary):
    """The lines ``workbench merge --edits`` prints: what changed, where, and how to adopt it."""
    lines = [f"applied {summary['edits']} label edit(s) into {summary['out']} (the pool itself is unchanged)"]
    lines += [f"  {change}: {n}" for change, n in sorted(summary["changes"].items())]
    lines += [f"  {name}: {n} line(s) changed" for name, n in sorted(summary["files"].items())]
    lines.append(f"review with: diff -r data/pool {summary['out']}; use it with --pool-dir {summary['out']} "
                 "or copy its files over data/pool")
    return "\n".join(lines)
