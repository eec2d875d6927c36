"""The gateway's decision log: one JSON line per routed request, in ``DIR/decisions-YYYY-MM-DD.jsonl`` (UTC).

Records leave the request path at once: :meth:`DecisionLog.write` puts them
on a queue and one writer thread appends them as they come (unbuffered, so
nothing waits longer than a write; :meth:`DecisionLog.close` drains the queue
on shutdown). A folder that cannot be
written, or a full disk, is logged (once per kind of error and file) and
counted, and never fails a request; the writer tries again with the next
record. :mod:`workbench.traffic.decision_log` reads the files back.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time


log = logging.getLogger(__name__)

__all__ = ["DecisionLog", "log_file_name"]

_STOP = object()


def log_file_name(seconds, prefix="decisions") -> str:
    """The file a record of time ``seconds`` (Unix) goes to (``<prefix>-YYYY-MM-DD.jsonl``, UTC)."""
    return time.strftime(f"{prefix}-%Y-%m-%d.jsonl", time.gmtime(seconds))


class DecisionLog:
    """Append decision records to daily files from one background thread.

    Each pass takes every queued record and appends them with one
    ``write`` to a file opened with ``O_APPEND``: records of several worker
    processes never interleave within a line, and nothing waits in a buffer
    (so the once-a-second flush is met by construction).

    Parameters
    ----------
    folder : path
        Created if missing (a failure is logged and counted, not raised).
    prepare : callable, optional
        Applied to each record in the writer thread (scrubbing the text), off the request path.
    on_written, on_error : callable, optional
        Called with the number of records written, or lost (metrics).
    prefix : str
        File name prefix: ``decisions`` (the gateway's records) or ``feedback`` (:mod:`.feedback`).
    """

    def __init__(self, folder, *, prepare=None, on_written=None, on_error=None, prefix="decisions"):
        self.folder, self.prepare, self.prefix = str(folder), prepare, prefix
        self.on_written, self.on_error = on_written, on_error
        self._queue = queue.Queue()
        self._fd, self._name, self._reported = None, None, set()
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def write(self, record):
        """Queue one record (a JSON-ready dict); never blocks, never raises."""
        self._queue.put(record)

    def close(self, timeout=10.0):
        """Write what is queued and close the file."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self):
        while True:
            batch = [self._queue.get()]
            while len(batch) < 4096:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in batch if r is not _STOP]
            if records:
                self._write(records)
            if len(records) < len(batch):
                self._close_file()
                return

    def _lines(self, records):
        out, count = bytearray(), 0
        for record in records:
            try:
                record = self.prepare(record) if self.prepare is not None else record
                out += (json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
                        + "\n").encode("utf-8", "surrogatepass")
                count += 1
            except Exception as e:  # a record that cannot be written must not stop the writer
                self._failed("encode a record", e)
        return bytes(out), count

    def _write(self, records):
        data, count = self._lines(records)
        if not count:
            return
        try:
            fd = self._file(log_file_name(time.time(), self.prefix))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as e:
            self._failed("write", e, lost=count)
            self._close_file()  # reopened with the next records
            return
        if self.on_written is not None:
            self.on_written(count)

    def _file(self, name):
        if name != self._name or self._fd is None:
            self._close_file()
            os.makedirs(self.folder, exist_ok=True)
            self._fd = os.open(os.path.join(self.folder, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._name = name
        return self._fd

    def _close_file(self):
        fd, self._fd, self._name = self._fd, None, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _failed(self, what, error, lost=1):
        if self.on_error is not None:
            self.on_error(lost)
        key = (what, type(error).__name__, getattr(error, "errno", None))
        if key not in self._reported:  # one line per kind of failure, not one per request
            self._reported.add(key)
            log.error("decision log: cannot %s in %s (%s); records are counted as lost until it works again",
                      what, self.folder, getattr(error, "strerror", None) or type(error).__name__)
