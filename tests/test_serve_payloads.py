"""What POST /route accepts (the parser the service runs before routing; no server, no model)."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from workbench.serve.payloads import RequestError, parse_route_request


def parse(body, **kw):
    return parse_route_request(body if isinstance(body, bytes) else json.dumps(body).encode(),
                               max_messages=kw.get("max_messages", 4), max_chars=kw.get("max_chars", 50))


def test_a_text_or_messages_with_ids_and_neighbours():
    one = parse({"text": "hi"})
    assert one.single and one.texts == ["hi"] and not one.neighbors
    many = parse({"messages": [{"id": "a", "text": "x"}, {"text": "y"}], "neighbors": True})
    assert not many.single and many.ids == ["a", None] and many.texts == ["x", "y"] and many.neighbors


@pytest.mark.parametrize("body,status", [(b"{", 400), ({"text": "x" * 51}, 413), ({"messages": [{"text": "a"}] * 5}, 413),
                                         ({"text": "a", "neighbors": "yes"}, 422), ({"messages": [{"id": [1], "text": "a"}]}, 422),
                                         ({"text": "a", "messages": []}, 422)])
def test_refusals_carry_their_status(body, status):
    with pytest.raises(RequestError) as e:
        parse(body)
    assert e.value.status == status

@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["text", "messages", "id",
                                                                                       "neighbors", "x"]), c,
                                                                     max_size=3), max_leaves=8))
def test_any_json_body_is_answered_or_refused_with_400_413_or_422(body):
    """The parser the service uses: every JSON value routes or is refused cleanly, never crashes."""
    try:
        req = parse_route_request(json.dumps(body).encode(), max_messages=4, max_chars=50)
    except RequestError as e:
        assert e.status in (400, 413, 422) and "\n" not in e.message
    else:
        assert req.texts and all(isinstance(t, str) and t.strip() for t in req.texts)




def test_a_conversation_is_its_turns_oldest_first():
    from workbench.serve.payloads import parse_conversation_request

    req = parse_conversation_request(json.dumps({"conversation_id": "c1", "turns": [{"id": "t1", "text": "hi"},
                                                                                      {"text": "and?"}]}).encode(),
                                     max_turns=4, max_chars=50)
    assert req.conversation_id == "c1" and req.texts == ["hi", "and?"] and req.ids == ["t1", None] and not req.neighbors


@pytest.mark.parametrize("body,status,message", [
    ({"turns": []}, 422, "'turns' must be a non-empty array"), ({"turns": [{"text": "a"}] * 5}, 413, "5 turns"),
    ({"turns": [{"text": 3}]}, 422, "turns[0].text must be a string"), ({"text": "a"}, 422, "unknown field"),
    ({"conversation_id": {}, "turns": [{"text": "a"}]}, 422, "'conversation_id' must be a string or number"),
    (b"[", 400, "invalid JSON")])
def test_conversation_refusals_carry_their_status(body, status, message):
    from workbench.serve.payloads import parse_conversation_request

    with pytest.raises(RequestError) as e:
        parse_conversation_request(body if isinstance(body, bytes) else json.dumps(body).encode(), max_turns=4,
                                   max_chars=50)
    assert e.value.status == status and message in e.value.message
