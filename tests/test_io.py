import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import DataError
from workbench.io import atomic_file, read_jsonl, write_text_atomic


def test_atomic_write_replaces_and_gives_ordinary_permissions(tmp_path):
    p = tmp_path / "a.txt"
    write_text_atomic(p, "one")
    write_text_atomic(p, "two")
    mask = os.umask(0)
    os.umask(mask)
    assert p.read_text() == "two"
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(p) as fh:
            fh.write(b"half")
            raise RuntimeError("interrupted")
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]


_TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_TEXTS, min_size=1, max_size=6), cut=st.floats(0, 1))
def test_a_decision_log_read_mid_append_gives_exactly_its_complete_records(tmp_path, texts, cut):
    """Whatever byte a reader stops at while the gateway appends (mid-record, mid-character), the readers see the
    records whose whole line arrived, in order, and never fail on the torn one."""
    from workbench.traffic.decision_log import decision_records, logged_decisions, read_decision_log

    lines = [json.dumps({"request_id": f"r{i}", "text_sha256": "x", "text": t, "routed": True}, ensure_ascii=False)
             .encode() + b"\n" for i, t in enumerate(texts)]
    data = b"".join(lines)
    seen = data[:round(cut * len(data))]
    path = tmp_path / "decisions-2026-12-07.jsonl"
    path.write_bytes(seen)
    whole = [i for i in range(len(lines)) if len(b"".join(lines[:i + 1])) <= len(seen)]
    assert [obj["request_id"] for _, obj in decision_records(path)] == [f"r{i}" for i in whole]
    assert [t["text"] for t in read_decision_log(path)] == [texts[i] for i in whole]
    assert [r["text"] for r in logged_decisions(tmp_path)] == [texts[i] for i in whole]


def test_a_torn_last_line_is_an_error_unless_the_file_is_live(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a"', encoding="utf-8")
    assert [obj["a"] for _, obj in read_jsonl(path, live=True)] == [1, 2]
    with pytest.raises(DataError, match=r"a\.jsonl:3"):
        list(read_jsonl(path))
    path.write_text('{"a": 1}\n{"a": 2}', encoding="utf-8")  # a finished file without its last newline
    assert [obj["a"] for _, obj in read_jsonl(path)] == [1, 2]
