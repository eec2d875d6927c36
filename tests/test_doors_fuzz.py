"""Issue 21 classes 8, 9 and 11: capped reads, one parser per input shape, strict JSON out.

The fuzz tier over raw bytes and JSON texts (huge integers, NaN, lone surrogates, BOMs) for ``score``,
``route --conversation`` and the shard reader, through the CLI where the exit code is the contract. The
decision-log reader and the gateway's request parser live on other branches (issues 17 and 18) and get the
same strategies there.
"""
import json

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tests.helpers import write_jsonl
from tests.test_fuzz import FUZZ, assert_cli_contract, check_error, files, no_hang, numpy_encoder, route_npz, run_main  # noqa: F401
from workbench.errors import WorkbenchError

HOSTILE_JSON = [b'{"text": NaN, "category": "coding"}', b'{"text": "hi", "category": Infinity}',
                b'{"text": "a", "category": ["coding"]}', b'{"text": "a", "category": {"x": 1}}',
                b'{"text": "\\u200b", "category": "coding"}', b'{"id": ' + b"9" * 5000 + b', "text": "a"}',
                b'{"text": "\\ud800 x", "category": "coding"}', b"\xef\xbb\xbf" + b'{"text": "bom", "category": "coding"}',
                b'{"text": "ok", "category": "coding"}']
raw_lines = st.one_of(st.sampled_from(HOSTILE_JSON), st.binary(max_size=30))
labelled_files = st.lists(raw_lines, min_size=1, max_size=5).map(lambda ls: b"\n".join(ls))


@FUZZ
@given(data=labelled_files)
def test_score_answers_or_names_the_line(route_npz, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("score") / "eval.jsonl"
    path.write_bytes(data)
    cache = str(path.parent / "cache")  # never a folder of the working directory (a relative "none" landed in git)
    code, out, err = run_main(["score", "--pool", str(route_npz), "--input", str(path), "--cache-dir", cache])
    assert_cli_contract(code, err)
    if code == 2:
        assert "eval.jsonl" in err


def test_score_with_a_list_as_category_is_one_line(route_npz, tmp_path):
    path = write_jsonl(tmp_path / "eval.jsonl", [{"text": "hi there", "category": ["coding"]}])
    code, _, err = run_main(["score", "--pool", str(route_npz), "--input", str(path)])
    assert code == 2 and "eval.jsonl:1: unknown category" in err and err.count("\n") == 1


conversation_lines = st.one_of(
    st.sampled_from([b'{"conversation_id": "c", "turns": [{"id": "t", "text": "hello there"}]}',
                     b'{"conversation_id": NaN, "turns": [{"id": "t", "text": "a"}]}',
                     b'{"conversation_id": "c", "turns": [{"id": "t", "text": "\\u200b"}]}',
                     b'{"conversation_id": "c", "turns": [{"id": ' + b"1" * 5000 + b', "text": "a"}]}',
                     b'{"conversation_id": "\\ud800", "turns": [{"id": "t", "text": "a"}]}',
                     b'{"conversation_id": ["c"], "turns": [{"id": "t", "text": "a"}]}']),
    st.binary(max_size=30))


@FUZZ
@given(lines=st.lists(conversation_lines, min_size=1, max_size=5))
def test_route_conversation_records_every_bad_line_or_stops_with_one(route_npz, lines):
    data = b"\n".join(lines)
    code, out, err = run_main(["route", "--pool", str(route_npz), "--conversation", "--on-error", "record"],
                              stdin=data)
    assert code == 0 and "Traceback" not in err, err
    records = [json.loads(line, parse_constant=pytest.fail) for line in out.splitlines()]  # strict JSON
    blank = sum(1 for raw in data.split(b"\n") if not raw.strip())
    assert len([r for r in records if "error" in r]) <= len(data.split(b"\n")) - blank
    code, out, err = run_main(["route", "--pool", str(route_npz), "--conversation"], stdin=data)
    assert_cli_contract(code, err)


def test_route_conversation_on_error_record_goes_on_after_a_bad_line(route_npz):
    data = (b'{"conversation_id": "c1", "turns": [{"id": "t", "text": "\\u200b"}]}\n'
            b'{"conversation_id": "c2", "turns": [{"id": "t", "text": "write a sql query"}]}\n')
    code, out, err = run_main(["route", "--pool", str(route_npz), "--conversation", "--on-error", "record"],
                              stdin=data)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and records[0] == {"conversation_id": "c1", "line": 1,
                                        "error": "turn 1: 'text' has no visible characters"}
    assert records[1]["conversation_id"] == "c2" and "tier" in records[1]


@FUZZ
@given(data=files, suffix=st.sampled_from([".jsonl", ".csv"]), bom=st.booleans())
def test_the_shard_reader_yields_messages_or_names_the_file(tmp_path_factory, data, suffix, bom):
    from workbench.dataset.shards import read_messages

    path = tmp_path_factory.mktemp("shard") / f"log{suffix}"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    with no_hang():
        try:
            rows = list(read_messages([path]))
        except WorkbenchError as e:
            check_error(e, path)
            return
    assert all(isinstance(i, str) and isinstance(t, str) for i, t in rows)


def test_a_csv_with_a_bom_keeps_its_ids(tmp_path):
    from workbench.dataset.shards import read_messages

    path = tmp_path / "log.csv"
    path.write_bytes("\ufeffid,text\nm1,hello\nm2,world\n".encode())
    assert list(read_messages([path])) == [("m1", "hello"), ("m2", "world")]


# -- class 8: the one reader's caps ----------------------------------------------------------------------------


def test_route_input_dev_zero_is_one_line_naming_the_limit(route_npz, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MAX_LINE_BYTES", "100000")
    code, _, err = run_main(["route", "--pool", str(route_npz), "--input", "/dev/zero"])
    assert code == 2 and "/dev/zero:1: line longer than 100000 bytes" in err and "WORKBENCH_MAX_LINE_BYTES" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", ["route", "score", "merge", "import", "embed"])
def test_a_file_past_the_cap_is_refused_by_every_reading_command(route_npz, tmp_path, monkeypatch, command):
    rows = [{"id": f"m{i}", "text": f"message number {i}", "category": "coding", "label_source": "m"}
            for i in range(50)]
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    monkeypatch.setenv("WORKBENCH_MAX_FILE_BYTES", "1000")
    argv = {"route": ["route", "--pool", str(route_npz), "--input", str(path)],
            "score": ["score", "--pool", str(route_npz), "--input", str(path)],
            "merge": ["merge", "--input", str(path), "--out", str(tmp_path / "o.jsonl")],
            "import": ["import", str(path), "--out", str(tmp_path / "o.jsonl"), "--no-pool", "--format", "text"],
            "embed": ["embed", "--input", str(path), "--out", str(tmp_path / "shards")]}[command]
    code, _, err = run_main(argv)
    assert code == 2 and "larger than 1000 bytes" in err and "WORKBENCH_MAX_FILE_BYTES" in err, err
    assert err.count("\n") == 1


def test_a_long_line_is_refused_by_the_jsonl_reader(tmp_path, monkeypatch):
    from workbench.errors import DataError
    from workbench.io import read_jsonl

    monkeypatch.setenv("WORKBENCH_MAX_LINE_BYTES", "64")
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"text": "short"}\n{"text": "' + b"x" * 100 + b'"}\n')
    with pytest.raises(DataError, match=r"x.jsonl:2: line longer than 64 bytes"):
        list(read_jsonl(path))


# -- class 11: strict JSON out ---------------------------------------------------------------------------------


def test_json_output_is_strict(tmp_path):
    from workbench.cli._console import json_line
    from workbench.io import write_json_atomic

    obj = {"a": float("nan"), "b": [np.float32("inf"), 1.5], "c": np.float64(2.0), "d": {"e": -float("inf")}}
    write_json_atomic(tmp_path / "x.json", obj)
    strict = {"a": None, "b": [None, 1.5], "c": 2.0, "d": {"e": None}}
    assert json.loads((tmp_path / "x.json").read_text(), parse_constant=lambda c: pytest.fail(c)) == strict
    assert json.loads(json_line(obj), parse_constant=lambda c: pytest.fail(c)) == strict


@FUZZ
@given(pad=st.integers(0, 5000), blank=st.sampled_from([" ", "\n", "\t", "\u3000", " \n"]))
def test_leading_or_inner_blanks_never_push_the_question_past_the_cap(pad, blank):
    from workbench.core.text import prepare_text

    question = "how do I reverse a linked list in C?"
    for text in (blank * pad + question, "hi" + blank * pad + question):
        assert question in prepare_text(text, max_chars=2048)


# -- class 10 and 12: shard integrity covers the text column; the manifest stays in its folder --------------------


@pytest.fixture
def shard_dir(tmp_path):
    from tests.helpers import HashEmbedder
    from workbench.scale.embed_logs import embed_logs

    log = write_jsonl(tmp_path / "log.jsonl", [{"id": f"m{i}", "text": f"message {i}"} for i in range(6)])
    embed_logs([log], tmp_path / "shards", backend=HashEmbedder(8), rows_per_shard=3)
    return tmp_path / "shards"


def _rewrite(path, **columns_or_meta):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"workbench"])
    for name, value in columns_or_meta.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, pa.array(value, pa.string()))
        else:
            meta[name] = value
    pq.write_table(table.replace_schema_metadata({"workbench": json.dumps(meta)}), path)


@pytest.mark.parametrize("edit", ["text", "text and its hash", "id"])
def test_an_edited_text_or_id_column_is_refused(shard_dir, edit):
    from workbench.dataset.shards import load_shards
    from workbench.errors import DataError
    from workbench.io import text_hash

    part = sorted(shard_dir.glob("part-*.parquet"))[0]
    texts = ["message 0", "EDITED: send me the keys", "message 2"]
    if edit == "text":
        _rewrite(part, text=texts)
    elif edit == "text and its hash":
        _rewrite(part, text=texts, text_hash=[text_hash(t) for t in texts])
    else:
        _rewrite(part, id=["m0", "other", "m2"])
    with pytest.raises(DataError, match="do not match the shard's hashes"):
        load_shards(shard_dir)


@pytest.mark.parametrize("names", [["../log.jsonl"], ["/etc/passwd"], ["sub/part.parquet"], [".."], [3], "x"])
def test_a_manifest_cannot_point_outside_its_folder(shard_dir, names):
    from workbench.dataset.shards import MANIFEST, load_shards
    from workbench.errors import DataError

    man = shard_dir / MANIFEST
    obj = json.loads(man.read_text())
    obj["shards"] = names
    man.write_text(json.dumps(obj))
    with pytest.raises(DataError, match="manifest"):
        load_shards(shard_dir)


@pytest.mark.parametrize("meta", [{"dim": "8"}, {"rows": None}, {"dim": True}, {"vectors_sha256": 5}])
def test_malformed_shard_metadata_is_one_line(shard_dir, meta):
    from workbench.dataset.shards import load_shards
    from workbench.errors import DataError

    part = sorted(shard_dir.glob("part-*.parquet"))[0]
    _rewrite(part, **meta)
    with pytest.raises(DataError, match="malformed shard metadata"):
        load_shards(shard_dir)
