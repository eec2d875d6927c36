"""Reading JSONL messages as a stream: every complete line that is ready now, without waiting for more.

``workbench route`` is used as a pipe by clients that write one message and
wait for its decision, so the reader must never hold a line back to fill a
batch: it hands over whatever complete lines the input has ready (up to a
batch size) and only then blocks for more.
"""
from __future__ import annotations

import os
import select

from ..errors import DataError
from ..core.text import message_problem
from ..io import CSV_HINT, bounded_lines, check_file_size, decode_line, looks_like_csv, parse_json, read_limits

__all__ = ["ready_batches", "message_problem", "parse_message"]

_READ = 1 << 16


def _ready(fd):
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):  # not selectable: treat as always ready (a regular file)
        return True


def ready_batches(fh, max_batch, name="<stdin>"):
    """Yield lists of ``(line number, raw bytes)``: the complete lines ready now, at most ``max_batch`` at a time.

    ``fh`` is a binary file object; with a real file descriptor the lines are
    handed over as soon as no more input is ready, otherwise one at a time.
    A line longer than the reader's cap (:func:`workbench.io.read_limits`) is a
    DataError naming ``name``, raised before more than the cap is held; a
    regular file is also held to the file cap (a pipe may stream for ever).
    """
    try:
        fd = fh.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:  # a file-like object without a descriptor (tests, notebooks): line by line
        for n, raw in enumerate(bounded_lines(fh, name), 1):
            yield [(n, raw)]
        return
    check_file_size(fh, name)
    max_line = read_limits()[0]
    partial, held, pending, n = [], 0, [], 0
    while True:
        if pending and (len(pending) >= max_batch or not _ready(fd)):
            yield pending[:max_batch]
            pending = pending[max_batch:]
            continue
        chunk = os.read(fd, _READ)
        if not chunk:
            if partial:
                pending.append((n + 1, b"".join(partial)))
            for i in range(0, len(pending), max_batch):
                yield pending[i:i + max_batch]
            return
        pieces = chunk.split(b"\n")
        held += len(pieces[0])
        if held > max_line or any(len(p) > max_line for p in pieces[1:]):
            raise DataError(name, n + 1 + next((i for i, p in enumerate(pieces[1:], 1) if len(p) > max_line), 0),
                            f"line longer than {max_line} bytes, the limit (set WORKBENCH_MAX_LINE_BYTES to raise it)")
        if len(pieces) == 1:
            partial.append(chunk)  # no newline yet: keep the pieces, join once (no quadratic copying)
            continue
        for piece in [b"".join(partial + [pieces[0]])] + pieces[1:-1]:
            n += 1
            pending.append((n, piece))
        partial = [pieces[-1]] if pieces[-1] else []
        held = len(pieces[-1])


def parse_message(raw, name, n, *, labelled=False, taxonomy=None):
    """One JSONL line as a message object, or None for a blank line; DataError names ``name:n``."""
    line = decode_line(raw, name, n)
    if not line.strip():
        return None
    obj, problem = parse_json(line)
    if problem and looks_like_csv(line, name):
        problem += CSV_HINT
    if problem is None and not isinstance(obj, dict):
        problem = f"expected a JSON object, got {type(obj).__name__}"
    if problem is None:
        problem = message_problem(obj, labelled=labelled, taxonomy=taxonomy)
    if problem:
        raise DataError(name, n, problem)
    return obj
