"""Issue 21 class 7: every option through which a command writes goes through the one output check.

The test walks the CLI's parser: any option that names a file or folder the command writes (``--out``, ``--json``,
``--cache``, ``--output-dir``, or help that says it writes) must be passed to ``check_outputs`` /
``check_output_path`` by its command, so a new writing option that skips the check fails here.
"""
import inspect
import re

import pytest

from tests.helpers import write_jsonl
from workbench.cli import build_parser

OUTPUT_DESTS = {"out", "json", "cache", "output_dir"}
WRITES = re.compile(r"\b(write|writes|written|where to write)\b", re.I)


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        outputs = [a for a in p._actions if a.option_strings and a.nargs != 0
                   and (a.dest in OUTPUT_DESTS or (a.choices is None and WRITES.search(a.help or "")))]
        if outputs:
            yield name, p, outputs


COMMANDS = list(_commands())


def test_the_walk_finds_the_writing_commands():
    names = {name for name, _, _ in COMMANDS}
    assert {"export", "import", "label", "merge", "embed", "score"} <= names


@pytest.mark.parametrize("name,parser,outputs", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_output_option_goes_through_the_output_check(name, parser, outputs):
    func = parser.get_default("func")
    source = inspect.getsource(func)
    for called in re.findall(r"return (cmd_\w+)\(args\)", source):  # a command that hands over (score --dir)
        source += inspect.getsource(getattr(inspect.getmodule(func), called))
    assert "check_outputs(" in source or "check_output_path(" in source, f"{name} writes without the output check"
    for action in outputs:
        option = max(action.option_strings, key=len)
        assert f'"{option}"' in source, f"{name} {option} is not passed to the output check"


def test_embed_json_cannot_replace_its_input(tmp_path):
    from tests.test_fuzz import run_main

    log = write_jsonl(tmp_path / "log.jsonl", [{"id": "m1", "text": "hello"}])
    before = log.read_bytes()
    code, _, err = run_main(["embed", "--input", str(log), "--out", str(tmp_path / "shards"), "--json", str(log)])
    assert code == 2 and "--json" in err and "is also an input" in err and log.read_bytes() == before
