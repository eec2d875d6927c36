"""Files and text: atomic writes, JSONL reading with file:line errors, text normalisation and hashing.

A reader never sees half a file: an interrupted write leaves the old one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path

from .errors import DataError

__all__ = ["write_text_atomic", "write_bytes_atomic", "write_json_atomic", "atomic_file", "parse_jsonl",
           "read_jsonl", "normalize_text", "text_hash"]

_WS = re.compile(r"\s+")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class atomic_file:
    """Context manager: a binary file handle whose content replaces ``path`` only on success.

    The temp file lives in the same folder (so the rename is atomic), is
    fsynced, and gets the permissions a plain ``open`` would give
    (``mkstemp`` alone makes it private). On any error it is removed and
    ``path`` is left as it was.
    """

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.fchmod(fd, 0o666 & ~_umask())
        self.fh = os.fdopen(fd, "wb")
        return self.fh

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.fh.flush()
                os.fsync(self.fh.fileno())
            self.fh.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
        finally:
            if exc_type is not None or Path(self.tmp).exists():
                Path(self.tmp).unlink(missing_ok=True)
        return False


def write_bytes_atomic(path, data: bytes):
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    with atomic_file(path) as fh:
        fh.write(data)


def write_text_atomic(path, text: str):
    """Write UTF-8 ``text`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj):
    """Write ``obj`` as indented UTF-8 JSON atomically (numpy scalars become floats)."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=float))


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


def normalize_text(text: str) -> str:
    """The form used to detect exact duplicates: NFKC, case-folded, whitespace collapsed."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str) -> str:
    """SHA-256 of the exact message text: the key of the label cache and of candidate ids."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
