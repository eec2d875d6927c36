"""What ``POST /route`` accepts, checked before anything is routed; every refusal is one line with its status.

- ``{"text": "..."}`` -> one decision;
- ``{"messages": [{"id": ..., "text": "..."}, ...]}`` -> ``{"decisions": [...]}`` in order, ids echoed;
- optional ``"neighbors": true`` adds each decision's nearest pool messages.

What ``POST /route/conversation`` accepts: ``{"conversation_id": ..., "turns":
[{"id": ..., "text": "..."}, ...]}`` with the oldest user turn first (the id
is optional), and the same ``neighbors``.

400: not strict JSON (``NaN``, ``Infinity``, an integer past Python's digit
limit and lone surrogates included: the same :func:`workbench.io.parse_json`
the CLI readers use). 413: body, a text, the message count or the request's
character budget past its limit. 422: JSON of the wrong shape (the message
names the field and what it got), an unknown field (also inside a message),
or a text with nothing visible (:func:`workbench.core.text.has_visible_text`,
the rule of the CLI readers and of the router).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.text import has_visible_text
from ..io import parse_json

__all__ = ["RequestError", "RouteRequest", "ConversationRequest", "parse_route_request", "parse_conversation_request",
           "read_body", "json_body"]

_FIELDS = {"text", "messages", "neighbors"}
_CONVERSATION_FIELDS = {"conversation_id", "turns", "neighbors"}
_ITEM_FIELDS = {"id", "text"}


class RequestError(Exception):
    """A request the service refuses: ``status`` and a one-line ``message``."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class ConversationRequest:
    conversation_id: object
    texts: list
    ids: list
    neighbors: bool


@dataclass
class RouteRequest:
    texts: list
    ids: list          # None for a single ``text``
    neighbors: bool

    @property
    def single(self) -> bool:
        return self.ids is None


def _kind(v):
    return "null" if v is None else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(v), "number")


def _text(value, where, max_chars):
    if not isinstance(value, str):
        raise RequestError(422, f"{where} must be a string; got {_kind(value)}")
    if not has_visible_text(value):
        raise RequestError(422, f"{where} is empty (no visible characters)")
    if len(value) > max_chars:
        raise RequestError(413, f"{where} has {len(value)} characters; the limit is {max_chars}")
    return value


def _budget(texts, max_total_chars):
    total = sum(len(t) for t in texts)
    if max_total_chars is not None and total > max_total_chars:
        raise RequestError(413, f"{total} characters in this request; the limit is {max_total_chars} "
                                "(split it into several requests)")


def parse_route_request(body: bytes, *, max_messages, max_chars, max_total_chars=None) -> RouteRequest:
    """Parse and check a ``POST /route`` body.

    Raises
    ------
    RequestError
        With status 400, 413 or 422 and a one-line message.
    """
    obj, neighbors = _object(body, _FIELDS, "'text' or 'messages'")
    if ("text" in obj) == ("messages" in obj):
        raise RequestError(422, "give exactly one of 'text' or 'messages'")
    if "text" in obj:
        return RouteRequest([_text(obj["text"], "'text'", max_chars)], None, neighbors)
    msgs = obj["messages"]
    if not isinstance(msgs, list) or not msgs:
        got = "an empty array" if msgs == [] else _kind(msgs)
        raise RequestError(422, f"'messages' must be a non-empty array; got {got}")
    if len(msgs) > max_messages:
        raise RequestError(413, f"{len(msgs)} messages; the limit is {max_messages} per request")
    texts, ids = _items(msgs, "messages", max_chars)
    _budget(texts, max_total_chars)
    return RouteRequest(texts, ids, neighbors)


def parse_conversation_request(body: bytes, *, max_turns, max_chars, max_total_chars=None) -> ConversationRequest:
    """Parse and check a ``POST /route/conversation`` body.

    Raises
    ------
    RequestError
        With status 400, 413 or 422 and a one-line message.
    """
    obj, neighbors = _object(body, _CONVERSATION_FIELDS, "'turns'")
    cid = obj.get("conversation_id")
    if isinstance(cid, (dict, list, bool)):
        raise RequestError(422, f"'conversation_id' must be a string or number; got {_kind(cid)}")
    turns = obj.get("turns")
    if not isinstance(turns, list) or not turns:
        got = "an empty array" if turns == [] else _kind(turns)
        raise RequestError(422, f"'turns' must be a non-empty array (oldest user turn first); got {got}")
    if len(turns) > max_turns:
        raise RequestError(413, f"{len(turns)} turns; the limit is {max_turns} per request")
    texts, ids = _items(turns, "turns", max_chars)
    _budget(texts, max_total_chars)
    return ConversationRequest(cid, texts, ids, neighbors)


async def read_body(request, limit):
    """The body of a JSON request (415 without ``Content-Type: application/json``; 413 past ``limit`` bytes).

    The one body reader of the service and the gateway: the rest of a body over the limit is never read.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise RequestError(415, f"Content-Type must be application/json; got {kind[:40] or 'none'!r}")
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > limit:
        raise RequestError(413, f"body of {size} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"body larger than the limit of {limit} bytes")
    return bytes(body)


def json_body(body, what):
    """The strict JSON value of a body (a UTF-8 BOM allowed), or the 400 refusal naming ``what`` was expected."""
    if not body.strip():
        raise RequestError(400, f"empty body: send a JSON object with {what}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(400, f"body is not UTF-8 ({e.reason} at byte {e.start})") from None
    obj, problem = parse_json(text[1:] if text.startswith("\ufeff") else text)
    if problem:
        raise RequestError(400, problem)
    return obj


def _object(body, fields, what):
    """The JSON object of a body and its ``neighbors`` flag, or the refusal."""
    obj = json_body(body, what)
    if not isinstance(obj, dict):
        raise RequestError(422, f"expected a JSON object with {what}; got {_kind(obj)}")
    unknown = sorted(set(obj) - fields)
    if unknown:
        raise RequestError(422, f"unknown field(s) {unknown}; known: {sorted(fields)}")
    neighbors = obj.get("neighbors", False)
    if not isinstance(neighbors, bool):
        raise RequestError(422, f"'neighbors' must be true or false; got {_kind(neighbors)}")
    return obj, neighbors


def _items(items, name, max_chars):
    """Texts and ids of ``[{"id", "text"}, ...]``."""
    texts, ids = [], []
    for i, m in enumerate(items):
        if not isinstance(m, dict):
            raise RequestError(422, f"{name}[{i}] must be an object with 'text'; got {_kind(m)}")
        unknown = sorted(set(m) - _ITEM_FIELDS)
        if unknown:
            raise RequestError(422, f"unknown field(s) {unknown} in {name}[{i}]; known: {sorted(_ITEM_FIELDS)}")
        if "id" in m and isinstance(m["id"], (dict, list, bool)):
            raise RequestError(422, f"{name}[{i}].id must be a string or number; got {_kind(m['id'])}")
        texts.append(_text(m.get("text"), f"{name}[{i}].text", max_chars))
        ids.append(m.get("id"))
    return texts, ids
