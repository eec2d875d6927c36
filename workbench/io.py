"""Files and text: atomic writes, JSONL reading with file:line errors, text normalisation and hashing.

A reader never sees half a file: an interrupted write leaves the old one,
and the temp file a killed writer leaves behind is removed by the next
writer of that file. Every text file is read as UTF-8 with an optional BOM
(Excel's "CSV UTF-8" starts with one); an undecodable byte, invalid JSON of
any kind (deep nesting, integers over Python's digit limit, lone
surrogates) or a line that is not an object is a :class:`DataError` naming
the file and the line.
"""
from __future__ import annotations

import codecs
import hashlib
import json
import math
import os
import re
import tempfile
import unicodedata
from pathlib import Path

from .errors import ConfigError, DataError

__all__ = ["finite_json", "CSV_HINT", "looks_like_csv", "read_limits", "bounded_lines", "complete_lines", "check_file_size", "write_text_atomic", "write_bytes_atomic", "write_json_atomic", "atomic_file", "parse_jsonl",
           "read_jsonl", "read_text_file", "decode_line", "parse_json", "normalize_text", "text_hash",
           "remove_stale_temps", "check_output_path"]

_WS = re.compile(r"\s+")
#: A ``\uD800``-``\uDFFF`` escape or a raw surrogate: the only ways a lone surrogate gets into parsed JSON.
_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|[\ud800-\udfff]")


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

    Parameters
    ----------
    path : path
    check : callable(tmp_path), optional
        Called on the complete temp file before it takes ``path``'s place; an
        exception it raises leaves ``path`` as it was (export runs the
        pool.npz loader here, so a file the router would refuse is never installed).
    exclusive : bool
        Fail with :class:`FileExistsError` when ``path`` exists, also when
        another process creates it while this one writes (the file is linked
        into place, never renamed over).
    """

    def __init__(self, path, *, check=None, exclusive=False):
        self.path = Path(path)
        self.check, self.exclusive = check, exclusive

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.exclusive and self.path.exists():
            raise FileExistsError(f"{self.path} exists")
        remove_stale_temps(self.path.parent, f".{self.path.name}.*.tmp",
                           re.escape(f".{self.path.name}.") + r"(\d+)\..*\.tmp")
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.{os.getpid()}.", suffix=".tmp",
                                        dir=self.path.parent)
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
                if self.check is not None:
                    self.check(Path(self.tmp))
                if self.exclusive:
                    _link_into_place(self.tmp, self.path)
                else:
                    os.replace(self.tmp, self.path)
        finally:
            Path(self.tmp).unlink(missing_ok=True)
        return False


def _link_into_place(tmp, path):
    """``path`` becomes ``tmp``'s content, or FileExistsError when it exists (no check-then-rename race)."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise FileExistsError(f"{path} exists") from None
    except OSError:  # no hard links on this file system: reserve the name exclusively, then rename over it
        pass
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    os.replace(tmp, path)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def remove_stale_temps(directory, pattern, pid_regex):
    """Delete temp files in ``directory`` matching ``pattern`` whose writer (the pid ``pid_regex`` captures) is gone.

    Returns the number removed. A temp file of a live process is left alone, so
    concurrent writers never lose their file.
    """
    removed = 0
    rx = re.compile(pid_regex)
    for p in Path(directory).glob(pattern) if Path(directory).is_dir() else ():
        m = rx.fullmatch(p.name)
        if m and not _pid_alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def write_bytes_atomic(path, data: bytes):
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    with atomic_file(path) as fh:
        fh.write(data)


def write_text_atomic(path, text: str):
    """Write UTF-8 ``text`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def finite_json(obj):
    """``obj`` ready for strict JSON: NaN and infinite floats (numpy's too) become None, numpy scalars numbers."""
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # a numpy scalar
        obj = obj.item()
        if not isinstance(obj, float):
            return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def write_json_atomic(path, obj):
    """Write ``obj`` as indented strict UTF-8 JSON atomically (NaN and infinities as null, numpy scalars as numbers)."""
    write_text_atomic(path, json.dumps(finite_json(obj), indent=2, ensure_ascii=False, allow_nan=False, default=float))


def _lone_surrogate(obj):
    """The first string (key or value) of a parsed JSON value holding a lone surrogate, or None."""
    stack = [obj]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return v
        elif isinstance(v, dict):
            stack.extend(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return None


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def parse_json(text):
    """``(object, None)`` or ``(None, problem)``: every way ``json.loads`` can fail, as one short reason.

    Strict JSON (RFC 8259): ``NaN``, ``Infinity`` and numbers that overflow a
    float are refused like any other invalid JSON, so nothing parsed here can
    later be written back as non-JSON.
    """
    try:
        obj = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        return None, f"invalid JSON ({e.msg} at column {e.colno})"
    except RecursionError:
        return None, "invalid JSON (nested too deeply)"
    except ValueError as e:  # e.g. an integer beyond Python's digit limit
        return None, f"invalid JSON ({str(e).split(';')[0]})"
    if _SURROGATE_HINT.search(text) and _lone_surrogate(obj) is not None:
        return None, "invalid JSON (a lone surrogate escape such as \\ud800 is not a character)"
    return obj, None


def read_limits():
    """``(max line bytes, max file bytes)``: :mod:`workbench.config`'s caps, or the environment's overrides."""
    from . import config as _config

    caps = []
    for var, default in (("WORKBENCH_MAX_LINE_BYTES", _config.READ_MAX_LINE_BYTES),
                         ("WORKBENCH_MAX_FILE_BYTES", _config.READ_MAX_FILE_BYTES)):
        value = os.environ.get(var, "").strip()
        if not value:
            caps.append(default)
            continue
        if not value.isdigit() or int(value) < 1 or len(value) > 18:
            raise ConfigError(f"{var} must be a whole number of bytes >= 1; got {value[:30]!r}")
        caps.append(int(value))
    return tuple(caps)


def _too_long(name, n, limit):
    return DataError(name, n, f"line longer than {limit} bytes, the limit (set WORKBENCH_MAX_LINE_BYTES to raise it)")


def _too_big(name, limit):
    return DataError(name, None, f"larger than {limit} bytes, the limit for one input file "
                                 "(set WORKBENCH_MAX_FILE_BYTES to raise it, or split the file)")


def check_file_size(fh, name):
    """Refuse an open file larger than the file cap (devices and pipes are bounded while they are read)."""
    max_file = read_limits()[1]
    try:
        size = os.fstat(fh.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return
    if size > max_file:
        raise _too_big(name, max_file)


def bounded_lines(fh, name):
    """Yield the lines of a binary (or text) file object, each and all together within :func:`read_limits`.

    A line or a stream past its cap is a :class:`DataError` naming the
    limit, raised before more than the cap is held in memory
    (``route --input /dev/zero`` used to grow without end).
    """
    max_line, max_file = read_limits()
    check_file_size(fh, name)
    total, n = 0, 0
    while True:
        line = fh.readline(max_line + 1)
        if not line:
            return
        n += 1
        size = len(line) - (1 if line[-1:] in (b"\n", "\n") else 0)
        if size > max_line:
            raise _too_long(name, n, max_line)
        total += len(line)
        if total > max_file:
            raise _too_big(name, max_file)
        yield line


def decode_line(raw, name, n):
    """One line as text: bytes are decoded as UTF-8 (a BOM on line 1 dropped); a bad byte names the line."""
    if isinstance(raw, str):
        return raw[1:] if n == 1 and raw.startswith("\ufeff") else raw
    if n == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(name, n, f"not UTF-8: byte 0x{raw[e.start]:02x} at column {e.start + 1} "
                                 "(save the file as UTF-8)") from None


CSV_HINT = ("; this looks like CSV: this command reads JSONL, one {\"id\": ..., \"text\": ...} object a line "
            "(workbench import reads CSV)")


def looks_like_csv(line, name):
    """A line that failed as JSON and reads as CSV (a .csv/.tsv file, or commas or tabs and no opening brace)."""
    stripped = line.strip()
    return (str(name).lower().endswith((".csv", ".tsv"))
            or (not stripped.startswith(("{", "[")) and ("," in stripped or "\t" in stripped)))


def parse_jsonl(lines, name):
    """Yield ``(line_number, object)`` for each non-blank line (str or bytes); ``name`` is used in errors.

    Raises
    ------
    DataError
        On an undecodable byte, invalid JSON of any kind, or a line that is not a JSON object.
    """
    for n, raw in enumerate(lines, 1):
        line = decode_line(raw, name, n)
        if not line.strip():
            continue
        obj, problem = parse_json(line)
        if problem:
            raise DataError(name, n, problem + (CSV_HINT if looks_like_csv(line, name) else ""))
        if not isinstance(obj, dict):
            raise DataError(name, n, f"expected a JSON object, got {type(obj).__name__}")
        yield n, obj


def complete_lines(lines):
    """The lines that end in a newline: a last line without one is held back (a record still being appended)."""
    held = None
    for line in lines:
        if held is not None:
            yield held
        held = line
    if held is not None and held[-1:] in (b"\n", "\n"):
        yield held


def read_jsonl(path, *, live=False):
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file.

    Parameters
    ----------
    path : str or Path
    live : bool, default False
        The file may be being appended to (the gateway's decision log of today): a last line without its newline
        is a record still being written, and is not read. A writer appends whole lines, but a reader can see the
        first page of one write before the rest.

    Raises
    ------
    DataError
        On unreadable files, undecodable bytes, invalid JSON, or a line that is not a JSON object.
    """
    path = Path(path)
    try:
        fh = path.open("rb")
    except OSError as e:
        raise DataError(path, None, f"cannot read ({e.strerror})") from None
    with fh:
        lines = bounded_lines(fh, path)
        yield from parse_jsonl(complete_lines(lines) if live else lines, path)


def read_text_file(path):
    """A whole text file as UTF-8 (BOM dropped); an undecodable byte is a DataError naming its line."""
    path = Path(path)
    max_file = read_limits()[1]
    try:
        with path.open("rb") as fh:
            check_file_size(fh, path)
            data = fh.read(max_file + 1)
    except OSError as e:
        raise DataError(path, None, f"cannot read ({e.strerror})") from None
    if len(data) > max_file:
        raise _too_big(path, max_file)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(path, line, f"not UTF-8: byte 0x{data[e.start]:02x} at column {col} "
                                    "(save the file as UTF-8)") from None


def check_output_path(out, *, inputs=(), protected=(), force=False, option="--out"):
    """Refuse an output that would destroy an input: one of ``inputs``, or a path inside a ``protected`` folder.

    ``force`` allows the protected folders (never an input). Raises ConfigError.
    """
    out_r = Path(out).resolve()
    for p in inputs:
        if p is not None and Path(p).resolve() == out_r:
            raise ConfigError(f"{option} {out} is also an input; write to a new file")
    if force:
        return
    for d in protected:
        if d is None:
            continue
        d_r = Path(d).resolve()
        if out_r == d_r or d_r in out_r.parents:
            raise ConfigError(f"{option} {out} lies inside the pool folder {d}, whose files are inputs "
                              "(pass --force to write there anyway)")


def normalize_text(text: str) -> str:
    """The form used to detect exact duplicates: NFKC, case-folded, whitespace collapsed."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str) -> str:
    """SHA-256 of the exact message text: the key of the label cache and of candidate ids."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
