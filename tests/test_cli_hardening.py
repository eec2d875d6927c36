"""The command line against careless and hostile use (issue 11, classes 2, 9, 10, 13, 16, 17 and 18).

Usage errors are one line and exit 2 like every other error; outputs never destroy inputs; ``route`` is a stream;
what reaches the terminal has its control characters escaped.
"""
import json
import os
import queue
import subprocess
import sys
import threading

import numpy as np
import pytest

from tests.helpers import ROOT, synthetic_pool, write_jsonl
from workbench.cli import main

GOOD = {"id": "a1", "text": "write a haiku about rain", "category": "creative", "source": "written", "lang": "en",
        "label_source": "author"}


def run(*args, stdin=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], input=stdin, capture_output=True,
                          cwd=ROOT, timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def one_line_error(res, *needles):
    err = res.stderr.decode("utf-8", "replace") if isinstance(res.stderr, bytes) else res.stderr
    assert res.returncode == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err and "usage:" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def e5_npz(tmp_path, taxonomy):
    """A pool.npz that names the default backend (random vectors): loads without loading the model."""
    from workbench.core.artifact import write_pool_npz
    from workbench.core.embed import E5Small
    from workbench.core.knn import KNNConfig

    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=384)
    path = tmp_path / "pool.npz"
    write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, embedder_spec=E5Small().spec, config=KNNConfig(k=3))
    return path


# -- class 10: argparse's own errors and every numeric option ---------------------------------------------------


@pytest.mark.parametrize("argv, needle", [
    (["route"], "the following arguments are required: --pool"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["export", "--out", "x.npz", "--vote", "bogus"], "invalid choice: 'bogus'"),
    (["evaluate", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["route", "--pool", "p.npz", "--on-error", "ignore"], "invalid choice: 'ignore'"),
])
def test_argparse_errors_are_one_line_and_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and needle in err and "usage:" not in err


NUMERIC = [("evaluate", "--k"), ("evaluate", "--temperature"), ("evaluate", "--dup-threshold"),
           ("export", "--k"), ("export", "--abstain-threshold"), ("export", "--max-downgrade"),
           ("export", "--max-abstain"), ("import", "--min-chars"), ("import", "--max-chars"),
           ("import", "--dup-threshold"), ("nightly", "--k"), ("nightly", "--seed"),
           ("nightly", "--dup-threshold"), ("nightly", "--cluster-threshold"), ("route", "--batch-size"),
           ("label", "--concurrency"), ("label", "--limit")]
REQUIRED = {"export": ["--out", "x.npz"], "import": ["in.jsonl", "--out", "x.jsonl"], "route": ["--pool", "p.npz"],
            "label": ["--input", "in.jsonl", "--out", "out.jsonl"]}


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "abc", "1" * 5000])
@pytest.mark.parametrize("command, option", NUMERIC)
def test_every_numeric_option_refuses_a_bad_value_in_one_line(command, option, value, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, *REQUIRED.get(command, []), option, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and option in err and "must be" in err, err


# -- class 18 and 2: the pool a command routes with -------------------------------------------------------------


def test_a_jsonl_file_given_as_pool_says_what_it_is_and_never_suggests_pickle(tmp_path):
    pool = write_jsonl(tmp_path / "pool.jsonl", [GOOD])
    err = one_line_error(run("route", "--pool", pool, stdin=b'{"text": "hi"}\n'), "looks like a JSON/JSONL file")
    assert "pickle" not in err


def test_a_pinned_digest_refuses_another_artifact(e5_npz):
    one_line_error(run("route", "--pool", e5_npz, "--pool-sha256", "ab" * 32, stdin=b""), "not the expected")
    assert run("route", "--pool", e5_npz, "--pool-sha256", __import__("hashlib").sha256(e5_npz.read_bytes())
               .hexdigest(), stdin=b"").returncode == 0


def test_a_pool_naming_an_st_backend_needs_it_allowed(tmp_path, taxonomy):
    from workbench.core.artifact import write_pool_npz
    from workbench.core.knn import KNNConfig

    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=8)
    path = tmp_path / "st.npz"
    write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, config=KNNConfig(k=3),
                   embedder_spec={"backend": "st:evil/model", "model_id": "evil/model", "dim": 8, "prefix": ""})
    one_line_error(run("route", "--pool", path, stdin=b""), "names backend 'st:evil/model', which is not allowed")


# -- class 10 and 11: the route input reader ----------------------------------------------------------------------


@pytest.mark.parametrize("line, needle", [
    (b'{"id": 1, "text": "caf\xe9"}', "<stdin>:1: not UTF-8: byte 0xe9"),
    (b'{"id": 1, "text": "\\u200b\\u200b"}', "<stdin>:1: 'text' has no visible characters"),
    (b'{"id": 1, "text": "\\ud800"}', "<stdin>:1: invalid JSON (a lone surrogate"),
    (b"[" * 50_000, "<stdin>:1: invalid JSON (nested too deeply)"),
    (b'{"id": 1, "text": ' + b"7" * 5000 + b"}", "<stdin>:1: invalid JSON"),
])
def test_bad_route_input_is_one_line_before_anything_is_embedded(e5_npz, line, needle):
    one_line_error(run("route", "--pool", e5_npz, stdin=line + b"\n"), needle)


# -- class 9: route is a stream -----------------------------------------------------------------------------------


class Lines:
    """Lines of a pipe, read in a thread, so a test can wait for one with a timeout."""

    def __init__(self, pipe):
        self.q = queue.Queue()
        threading.Thread(target=lambda: [self.q.put(line) for line in pipe] and None, daemon=True).start()

    def next(self, timeout=180):
        try:
            return json.loads(self.q.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"no answer within {timeout} s while the client waits")


def test_route_answers_each_line_while_the_client_waits_and_records_bad_lines(small_npz):
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "route", "--pool", str(small_npz), "--on-error",
                             "record"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    out = Lines(proc.stdout)
    try:
        expected_errors = {2: ("m2", "missing or empty 'text'"), 3: (None, "invalid JSON")}
        for n, line in enumerate((b'{"id": "m1", "text": "write a python function that reverses a list"}',
                                  b'{"id": "m2"}', b'{"id": "m3", "text": ',
                                  b'{"id": "m4", "text": "thanks, good night!"}'), 1):
            proc.stdin.write(line + b"\n")
            proc.stdin.flush()  # and keep stdin open: the answer must come anyway
            answer = out.next()
            if n in expected_errors:
                mid, problem = expected_errors[n]
                assert answer["id"] == mid and answer["line"] == n and problem in answer["error"], answer
            else:
                assert answer["id"] == json.loads(line)["id"] and answer["tier"] in ("cheap", "medium", "strong")
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()


def test_route_stops_at_a_bad_line_after_writing_every_decision_before_it(small_npz):
    stdin = b"".join([b'{"id": "m1", "text": "write a sql query"}\n', b'{"id": "m2"}\n',
                      b'{"id": "m3", "text": "hello!"}\n'])
    res = run("route", "--pool", small_npz, stdin=stdin)
    one_line_error(res, "<stdin>:2: missing or empty 'text'")
    assert [json.loads(line)["id"] for line in res.stdout.decode().splitlines()] == ["m1"]


# -- class 13: outputs that are inputs ----------------------------------------------------------------------------


@pytest.fixture
def pool_dir(tmp_path):
    d = tmp_path / "pool"
    d.mkdir()
    write_jsonl(d / "a.jsonl", [GOOD])
    return d


@pytest.mark.parametrize("argv", [
    ["import", "{t}", "--pool-dir", "{pool}", "--out", "{pool}/real.jsonl", "--no-near-duplicates"],
    ["export", "--pool-dir", "{pool}", "--out", "{pool}/pool.npz"],
    ["evaluate", "--pool-dir", "{pool}", "--json", "{pool}/a.jsonl"],
    ["evaluate", "--pool-dir", "{pool}/a.jsonl", "--json", "{pool}/a.jsonl"],
    ["score", "--pool", "{tmp}/p.npz", "--input", "{t}", "--json", "{t}"],
    ["shadow", "--log", "{t}", "--json", "{t}"],
    ["merge", "--input", "{t}", "--out", "{t}"],
])
def test_an_output_that_is_an_input_or_inside_the_pool_folder_is_refused(tmp_path, pool_dir, argv, capsys):
    t = write_jsonl(tmp_path / "t.jsonl", [dict(GOOD, label_category="coding")])
    before = {p: p.read_bytes() for p in [t, *pool_dir.iterdir()]}
    argv = [a.format(t=t, pool=pool_dir, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("is also an input" in err or "lies inside the pool folder" in err), err
    assert {p: p.read_bytes() for p in before} == before and sorted(pool_dir.iterdir()) == sorted(
        p for p in before if p.parent == pool_dir)


def test_force_allows_the_pool_folder_but_never_an_input(tmp_path, pool_dir, capsys):
    assert main(["evaluate", "--pool-dir", str(pool_dir), "--json", str(pool_dir / "a.jsonl"), "--force"]) == 2
    assert "is also an input" in capsys.readouterr().err


# -- class 16: the nightly run folder ------------------------------------------------------------------------------


@pytest.mark.parametrize("date", ["..", ".", "../reports2", "a/b", ".hidden", "latest", "2026-13-45", "x" * 100,
                                  "-rf", "2026-11-25/../../x"])
def test_nightly_date_must_be_a_real_date_or_a_simple_name(tmp_path, date, capsys):
    assert main(["nightly", "--output-dir", str(tmp_path / "reports"), f"--date={date}"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("date", ["2026-11-25", "smoke_run-1", "2028-02-29"])
def test_nightly_accepts_real_dates_and_simple_names(date):
    from workbench.report.nightly import run_folder_name

    assert run_folder_name(date) == date


# -- class 17: terminal output --------------------------------------------------------------------------------------


ANSI = "\x1b[2J\x1b[31mred alert\x1b]0;owned\x07 \x9b31m"


def test_shadow_prints_user_text_with_its_escape_sequences_escaped(tmp_path, capsys):
    log = write_jsonl(tmp_path / "log.jsonl", [
        {"id": "1", "text": f"write code {ANSI}", "label_category": "coding", "routed_category": "casual"},
        {"id": "2", "text": "hello", "label_category": "casual", "routed_category": "casual", "lang": "e\x1b[1mn"}])
    assert main(["shadow", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\x9b")
    assert "\\x1b[2J\\x1b[31mred alert" in out


def test_an_error_naming_a_hostile_file_name_stays_one_escaped_line(tmp_path, capsys):
    bad = tmp_path / "evil\x1b[2J\nname.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    assert main(["shadow", "--log", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\\x1b[2J\\x0aname.jsonl:1: invalid JSON" in err


def test_route_output_is_json_without_raw_terminal_controls():
    from workbench.cli._console import json_line

    line = json_line({"id": "a\x9b31m\u202e", "text": "x\x1b"})
    assert json.loads(line) == {"id": "a\x9b31m\u202e", "text": "x\x1b"}
    assert not any(c in line for c in "\x1b\x9b\u202e")
