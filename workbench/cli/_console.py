"""What the ``workbench`` command writes to a terminal: one-line errors, and text with its control characters escaped.

User text reaches the terminal in tables, shadow disagreements, label
failures, log lines and error messages. An ANSI escape sequence in a chat
message must show as text (``\\x1b[2J``), not clear the screen or rewrite
what the reader sees, and an error must stay on one line.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys

__all__ = ["Parser", "echo", "printable", "json_line", "SafeLogFormatter", "EXIT_ERROR", "EXIT_OUT_OF_DATE"]

#: Exit code of a command that failed on bad input or bad state (one line on stderr says why).
EXIT_ERROR = 2
#: `workbench datasheet --check`: the tables are out of date (a result, not an error).
EXIT_OUT_OF_DATE = 1
#: C0 controls (tab and newline are kept where a text may span lines), DEL, C1, bidirectional overrides.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
#: What ``json.dumps(ensure_ascii=False)`` leaves raw but a terminal may act on.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escape(m):
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text, *, one_line=False) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``); ``one_line`` escapes newlines too."""
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE).sub(_escape, str(text))


def echo(*parts, file=None, flush=False):
    """``print`` for the CLI: control characters in the text are escaped."""
    print(printable(" ".join(str(p) for p in parts)), file=file or sys.stdout, flush=flush)


def json_line(obj) -> str:
    """One JSON object on one line, safe for a terminal (C1 and bidi controls as ``\\uXXXX``), still valid JSON."""
    import json

    from ..io import finite_json

    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}",
                               json.dumps(finite_json(obj), ensure_ascii=False, allow_nan=False))


class SafeLogFormatter(logging.Formatter):
    """A log message on one line, control characters escaped (it quotes file names, ids and texts).

    A traceback keeps its lines (one escaped line each): escaping its newlines made a service's traceback one
    unreadable line of ``\\x0a``, while a message's own newlines could still forge a log line.
    """

    def formatMessage(self, record):
        return printable(super().formatMessage(record), one_line=True)

    def formatException(self, ei):
        return "\n".join(printable(line, one_line=True) for line in super().formatException(ei).splitlines())

    def formatStack(self, stack_info):
        return "\n".join(printable(line, one_line=True) for line in super().formatStack(stack_info).splitlines())


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: a usage error is one line on stderr and exit code 2.

    argparse itself prints the usage block and then the error; a script reading
    stderr gets one line like every other error (``--help`` still shows the usage).
    """

    def error(self, message):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {printable(message, one_line=True)} (see {self.prog} --help)\n")
