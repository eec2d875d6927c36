"""Fuzzing the doors (issue 11, class 10): malformed input gets success or one line and exit 2, never a traceback.

Hypothesis generates hostile lines (deep nesting, huge integers, lone surrogates, invalid UTF-8, BOMs, wrong
types) and hostile pool.npz files (flipped bytes, truncation, unknown or oversized members, random headers and
metadata), and drives the pool loader, the route input reader, the transcript readers and the pool.npz loader,
through the CLI where the exit code is the contract. Each run is bounded: a fixed number of derandomised examples,
and a per-example alarm that fails the test if anything hangs.
"""
import contextlib
import io
import json
import os
import signal
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import HashEmbedder, synthetic_pool, write_jsonl
from workbench.cli import main
from workbench.core.artifact import load_pool_npz, write_pool_npz
from workbench.core.knn import KNNConfig
from workbench.errors import ArtifactError, DataError, WorkbenchError
from workbench.io import parse_jsonl

HANG_SECONDS = 30  # per example; nothing here should take more than a fraction of a second
#: Examples per door in CI; ``WORKBENCH_FUZZ_EXAMPLES=2000`` for a longer hunt (and ``WORKBENCH_FUZZ_SEED`` to vary it).
EXAMPLES = int(os.environ.get("WORKBENCH_FUZZ_EXAMPLES", 60))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="WORKBENCH_FUZZ_SEED" not in os.environ,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` in the code under test can swallow it."""


@contextlib.contextmanager
def no_hang(seconds=HANG_SECONDS):
    def fire(*_):
        raise Hang(f"no outcome within {seconds} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- strategies --------------------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=30), st.sampled_from(["coding", "casual", "creative", "", " ", "\u200b"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
FIELDS = ("id", "text", "category", "source", "lang", "label_source", "alt_category", "messages", "conversation")
records = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=7)
hostile = st.sampled_from([
    b"[" * 30_000, b'{"a": ' * 3000, b'{"text": ' + b"9" * 5000 + b"}", b'{"text": "\\ud800"}',
    b'{"text": "\\udfff\\ud800"}', b"\xef\xbb\xbf{}", b"\xff\xfe{}", b'{"text": "caf\xe9"}', b"\x00\x00",
    b'{"text": "hi", "category": ["coding"]}', b'{"text": {"a": 1}}', b"null", b"[]", b'"text"', b"1e999",
    b'{"text": "\\u0000"}', b'{"messages": [{"role": ["user"], "content": 1}]}', b'{"messages": "x"}',
])
lines = st.one_of(records.map(lambda r: json.dumps(r).encode()), hostile, st.binary(max_size=40),
                  st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")))
files = st.lists(lines, min_size=0, max_size=6).map(lambda ls: b"\n".join(ls))


def check_error(e, name=None):
    """A project error: one line, naming the input when it has a name."""
    assert isinstance(e, WorkbenchError), repr(e)
    text = str(e)
    assert "\n" not in text and text, repr(text)
    if name is not None:
        assert str(name) in text, text


@contextlib.contextmanager
def cli_io(stdin=b""):
    """Run main() with byte stdin and captured stdout/stderr; yields a dict filled with ``out`` and ``err``."""
    saved = sys.stdin, sys.stdout, sys.stderr
    out_b, err_b = io.BytesIO(), io.BytesIO()
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(out_b, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err_b, encoding="utf-8", write_through=True)
    box = {}
    try:
        yield box
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        box["out"] = out_b.getvalue().decode("utf-8", "replace")
        box["err"] = err_b.getvalue().decode("utf-8", "replace")
        for stream in (sys.stdin, sys.stdout, sys.stderr):
            stream.detach()  # the buffers stay open for the next example
        sys.stdin, sys.stdout, sys.stderr = saved


def run_main(argv, stdin=b""):
    """``(exit code, stdout, stderr)`` of the CLI in this process; argparse exits count as their code."""
    with no_hang(), cli_io(stdin) as box:
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, box["out"], box["err"]


def assert_cli_contract(code, err):
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("workbench "), err


# -- properties of the JSONL reader and the metadata validator ----------------------------------------------------


@FUZZ
@given(st.lists(lines, max_size=8))
def test_parse_jsonl_yields_objects_or_names_the_first_bad_line(raw_lines):
    with no_hang():
        try:
            got = list(parse_jsonl(raw_lines, "in.jsonl"))
        except DataError as e:
            check_error(e, "in.jsonl:")
            assert 1 <= e.line <= len(raw_lines)
            return
    assert all(isinstance(obj, dict) for _, obj in got)
    from workbench.io import decode_line

    assert [n for n, _ in got] == [n for n, raw in enumerate(raw_lines, 1) if decode_line(raw, "x", n).strip()]


@pytest.fixture(scope="module")
def valid_meta(tmp_path_factory, taxonomy):
    path = tmp_path_factory.mktemp("meta") / "p.npz"
    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=8)
    return write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(8).spec,
                          config=KNNConfig(k=3))


@FUZZ
@given(key=st.sampled_from(["schema_version", "backend", "model_id", "dim", "prefix", "categories", "tier_map",
                            "tiers", "cost", "k", "vote", "temperature", "center", "dtype", "n", "sha256", "counts",
                            "created", "policy", "head", "operating_point", "extra"]),
       value=json_values, drop=st.booleans())
def test_the_metadata_validator_accepts_or_gives_one_line_for_any_field_value(valid_meta, key, value, drop):
    from workbench.core.artifact_schema import validate_metadata

    meta = dict(valid_meta)
    if drop:
        meta.pop(key, None)
    else:
        meta[key] = value
    with no_hang():
        try:
            validate_metadata(meta)
        except ArtifactError as e:
            check_error(e)


@FUZZ
@given(json_values)
def test_the_metadata_validator_never_crashes_on_any_json(value):
    from workbench.core.artifact_schema import validate_metadata

    with no_hang():
        try:
            validate_metadata(value)
        except ArtifactError as e:
            check_error(e)


# -- the doors -----------------------------------------------------------------------------------------------------


@FUZZ
@given(data=files)
def test_pool_loader_through_merge(tmp_path_factory, taxonomy, data):
    d = tmp_path_factory.mktemp("pool")
    (d / "pool.jsonl").write_bytes(data)
    labelled = write_jsonl(d / "labelled.jsonl", [{"id": "fz-1", "text": "a fuzzed merge", "category": "coding",
                                                   "label_source": "m"}])
    code, _, err = run_main(["merge", "--input", str(labelled), "--pool-dir", str(d / "pool.jsonl"),
                             "--out", str(d / "out.jsonl")])
    assert_cli_contract(code, err)


@FUZZ
@given(data=files)
def test_route_input_reader(route_npz, data):
    code, out, err = run_main(["route", "--pool", str(route_npz), "--on-error", "record"], stdin=data)
    assert code == 0 and "Traceback" not in err, err
    assert all(json.loads(line) for line in out.splitlines())
    code, out, err = run_main(["route", "--pool", str(route_npz)], stdin=data)
    assert_cli_contract(code, err)


@FUZZ
@given(data=files, suffix=st.sampled_from([".jsonl", ".json", ".csv"]), fmt=st.sampled_from(["auto", "messages",
                                                                                              "text"]))
def test_transcript_readers(tmp_path_factory, data, suffix, fmt):
    from workbench.traffic.transcripts import read_transcripts

    path = tmp_path_factory.mktemp("tr") / f"export{suffix}"
    path.write_bytes(data)
    with no_hang():
        try:
            rows = read_transcripts(path, fmt=fmt)
        except WorkbenchError as e:
            check_error(e, path)
            return
    assert all(isinstance(r["text"], str) for r in rows)


@pytest.fixture(scope="module")
def route_npz(tmp_path_factory, taxonomy):
    """A pool.npz that names the default backend; routing in these tests embeds with a numpy stand-in."""
    from workbench.core.embed import E5Small

    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=384)
    path = tmp_path_factory.mktemp("npz") / "pool.npz"
    write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, embedder_spec=E5Small().spec, config=KNNConfig(k=3))
    return path


@pytest.fixture(autouse=True)
def numpy_encoder(monkeypatch):
    """The routers of these tests embed with a hash stand-in of the default backend's shape (no model)."""
    from workbench.core.embed import E5Small

    def fake(self, texts):
        return HashEmbedder(384).encode(texts)
    monkeypatch.setattr(E5Small, "_encode", fake)


def _mutate(src, dst, how, data):
    raw = src.read_bytes()
    if how == "flip":
        b = bytearray(raw)
        for pos in data.draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=8)):
            b[pos] ^= data.draw(st.integers(1, 255))
        dst.write_bytes(bytes(b))
    elif how == "truncate":
        dst.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1))])
    else:
        with zipfile.ZipFile(src) as zin:
            members = {i.filename: zin.read(i) for i in zin.infolist()}
        if how == "drop":
            members.pop(data.draw(st.sampled_from(sorted(members))))
        elif how == "metadata":
            meta = json.loads(np.load(io.BytesIO(members["metadata.npy"]), allow_pickle=False).item())
            meta[data.draw(st.sampled_from(sorted(meta)))] = data.draw(json_values)
            buf = io.BytesIO()
            np.save(buf, np.array(json.dumps(meta)))
            members["metadata.npy"] = buf.getvalue()
        else:  # a member with a random header: name, dtype and shape drawn
            name = data.draw(st.sampled_from(["embeddings.npy", "labels.npy", "head_x.npy", "ann_index.npy",
                                              "calibration_t.npy", "evil.npy", "../x.npy", "metadata.npy"]))
            shape = tuple(data.draw(st.lists(st.integers(0, 10**9), max_size=3)))
            descr = data.draw(st.sampled_from(["<f4", "<f2", "|u1", "<i2", "|O", "<U9", "|V8", "<c8"]))
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
            members[name] = buf.getvalue() + data.draw(st.binary(max_size=64))
        with zipfile.ZipFile(dst, "w", compression=data.draw(st.sampled_from([0, 8]))) as zout:
            for name, blob in members.items():
                zout.writestr(name, blob)


@FUZZ
@given(how=st.sampled_from(["flip", "truncate", "drop", "metadata", "member"]), data=st.data())
def test_pool_npz_loader(route_npz, tmp_path_factory, how, data):
    bad = tmp_path_factory.mktemp("bad") / "pool.npz"
    _mutate(route_npz, bad, how, data)
    with no_hang():
        try:
            load_pool_npz(bad)
        except ArtifactError as e:
            check_error(e, bad)
    code, _, err = run_main(["route", "--pool", str(bad)], stdin=b"")
    assert_cli_contract(code, err)
