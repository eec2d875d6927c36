"""The CLI's log formatter and the service's start line (issue 22: one-line tracebacks, a silent start)."""
import logging
from types import SimpleNamespace

from workbench.cli._console import SafeLogFormatter
from workbench.serve.server import start_line


def _formatted(message, *args, exc=None):
    record = logging.LogRecord("workbench.x", logging.ERROR, __file__, 1, message, args,
                               (type(exc), exc, exc.__traceback__) if exc else None)
    return SafeLogFormatter("%(levelname)s %(name)s: %(message)s").format(record)


def test_a_message_stays_on_one_line_whatever_it_quotes():
    out = _formatted("bad id %r in %s", "a\nINFO forged: line", "file\rname")
    assert "\n" not in out and "\r" not in out and out.startswith("ERROR workbench.x: bad id")


def test_a_traceback_keeps_its_lines_each_escaped():
    try:
        raise ValueError("boom\x1b[31m")
    except ValueError as e:
        out = _formatted("routing failed\nfor %s", "x", exc=e)
    lines = out.splitlines()
    assert lines[0] == "ERROR workbench.x: routing failed\\x0afor x"  # the message: one line, escaped
    assert "Traceback (most recent call last):" in lines[1:]
    assert lines[-1].startswith("ValueError: boom") and "\x1b" not in out
    assert "\\x0a" not in "\n".join(lines[1:])  # the traceback: its own lines


def test_the_start_line_names_the_address_the_pool_and_the_gateway():
    loaded = SimpleNamespace(rows=4023, backend="e5-small+use-multilingual", sha256="ab" * 32)
    line = start_line(loaded, host="127.0.0.1", port=8080, workers=1)
    assert line == ("serving 4023 rows (backend e5-small+use-multilingual, sha256 abababababab) on "
                    "http://127.0.0.1:8080 with 1 worker(s)")
    assert "http://[::1]:9000/v1 (upstreams up.yaml)" in start_line(loaded, host="::1", port=9000, workers=2,
                                                                     gateway={"upstreams": "up.yaml"})
