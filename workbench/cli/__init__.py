"""Command-line interface: ``workbench <command> --help``.

The parser is assembled here from the command groups, each of which adds
its commands with ``register(subparsers)``: :mod:`.pool` (evaluate, export, promote,
route, score, datasheet), :mod:`.traffic` (import, label, merge, shadow),
:mod:`.report` (nightly) and :mod:`.scale` (embed, serve). Shared options live in :mod:`._options`.
The contract of every command is kept here, in one place: a project error
becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import logging
import sys

from ..errors import WorkbenchError
from . import pool, report, scale, traffic
from ._console import EXIT_ERROR, Parser, SafeLogFormatter, printable

__all__ = ["build_parser", "main", "EXIT_ERROR", "EXIT_INTERRUPTED"]

EXIT_INTERRUPTED = 130
#: The command groups, in the order ``--help`` lists them.
GROUPS = (pool, traffic, report, scale)


def build_parser():
    parser = Parser(prog="workbench", description="Build, map, evaluate and export k-NN routing pools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(SafeLogFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    try:
        code = args.func(args)  # a command returns an exit code only when it has one to give (datasheet --check)
    except WorkbenchError as e:
        print(f"workbench {args.command}: error: {printable(e, one_line=True)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except OSError as e:  # the file system said no (a folder given for a file, permissions, a full disk)
        where = f"{e.filename}: " if e.filename else ""
        print(f"workbench {args.command}: error: {printable(where + (e.strerror or str(e)), one_line=True)}",
              file=sys.stderr)
        return EXIT_ERROR
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
