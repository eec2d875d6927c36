"""Atomic file writes: a reader never sees half a file, an interrupted run leaves the old one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_text_atomic", "write_bytes_atomic", "atomic_file"]


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
