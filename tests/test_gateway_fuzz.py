"""Fuzz tier of the gateway's doors (issue 21 class 9): the chat-request parser and the decision-log reader.

Hypothesis generates raw bytes and JSON texts (huge integers, ``NaN``/``Infinity``, lone surrogates, BOMs,
invisible texts, parts lists with images), not Python values: every body is parsed or refused with a 4xx and a
one-line message, every decision-log line is read or named by file and line, and nothing else is raised.
"""
import json

from hypothesis import HealthCheck, given, settings, strategies as st

from workbench.core.text import has_visible_text
from workbench.errors import DataError
from workbench.serve.chat import parse_chat_request
from workbench.serve.payloads import RequestError
from workbench.traffic.decision_log import read_decision_log

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
INVISIBLE = ["\u200b", " \u200b\u200d ", "\u3164", "\u2800", "\ufeff", "\u0301", "\t\n"]

_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
            | st.sampled_from(INVISIBLE + ["hi", "\ud800", "auto", "user", "text", "image_url"]))
_PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "input_audio", 3]), "text": _SCALARS})
_MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", None, 1]),
                                  "content": _SCALARS | st.lists(_PART, max_size=3)})
_BODY = st.fixed_dictionaries({"model": _SCALARS, "messages": st.lists(_MESSAGE, max_size=4) | _SCALARS},
                              optional={"stream": _SCALARS, "user": _SCALARS})
_JSON_TEXTS = (_BODY | st.recursive(_SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(["model", "messages", "role", "content", "stream", "user"]), c, max_size=3), max_leaves=8)).map(
    lambda v: json.dumps(v, allow_nan=True))  # NaN, Infinity and \ud800 escapes on the wire
_HUGE = st.integers(min_value=4400, max_value=6000).map(
    lambda n: '{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "n": %s}' % ("7" * n))
_RAW = (_JSON_TEXTS.map(str.encode) | _HUGE.map(str.encode) | st.binary(max_size=40)
        | _JSON_TEXTS.map(lambda t: "\ufeff".encode() + t.encode()))


@FUZZ
@given(_RAW)
def test_any_chat_body_is_parsed_or_refused_with_a_4xx(raw):
    try:
        req = parse_chat_request(raw)
    except RequestError as e:
        assert 400 <= e.status < 500 and "\n" not in e.message
        return
    assert req.model and isinstance(req.stream, bool)
    assert all(has_visible_text(t) for t in req.texts)  # an invisible turn never reaches the router
    # what is forwarded and logged can be written back as strict JSON
    json.dumps(req.body, allow_nan=False).encode("utf-8")
    json.dumps({"texts": req.texts, "conversation_id": req.conversation_id}, allow_nan=False).encode("utf-8")


def test_invisible_user_turns_are_not_routed_and_nan_is_refused():
    body = {"model": "auto", "messages": [{"role": "user", "content": "\u200b"},
                                          {"role": "user", "content": [{"type": "text", "text": "\u3164"},
                                                                       {"type": "image_url", "image_url": {}}]},
                                          {"role": "user", "content": "and in python?"}]}
    assert parse_chat_request(json.dumps(body).encode()).texts == ["and in python?"]
    for raw in (b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
                b'{"model": "auto", "messages": [{"role": "user", "content": "\\ud800"}]}'):
        try:
            parse_chat_request(raw)
        except RequestError as e:
            assert e.status == 400
        else:
            raise AssertionError(f"accepted {raw!r}")


_RECORD = st.fixed_dictionaries({"request_id": _SCALARS, "text_sha256": _SCALARS},
                                optional={"text": _SCALARS, "conversation_id": _SCALARS, "turn": _SCALARS})
_LINES = st.lists(_RECORD.map(lambda r: json.dumps(r, allow_nan=True)) | _JSON_TEXTS | _HUGE
                  | st.binary(max_size=30).map(lambda b: b.decode("latin-1")), max_size=5)


@FUZZ
@given(lines=_LINES, bom=st.booleans())
def test_any_decision_log_is_read_or_named_by_file_and_line(tmp_path_factory, lines, bom):
    path = tmp_path_factory.mktemp("log") / "decisions-2026-12-06.jsonl"
    path.write_bytes(("\ufeff" if bom else "").encode() + "\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        rows = list(read_decision_log(path))
    except DataError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    for row in rows:
        assert isinstance(row["text"], str) and isinstance(row["line"], int)
        assert row["conversation"] is None or isinstance(row["conversation"], str)
        json.dumps(row, allow_nan=False)
