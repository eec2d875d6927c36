"""Reading an OpenAI chat-completions request: the model asked for, and the user turns to route on.

Only text counts for routing: a string ``content``, or the ``text`` parts of a
list of parts joined by newlines; images, audio, files and tool calls are
ignored, and so are system, assistant and tool messages. The conversation id
is the client's ``user`` field or ``x-conversation-id`` header, else a hash of
the first user turn (so the turns of one conversation group without the
client sending an id).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..core.text import has_visible_text
from .payloads import RequestError, json_body, read_body

__all__ = ["ChatRequest", "parse_chat_request", "read_body", "user_texts"]


@dataclass(frozen=True)
class ChatRequest:
    """One ``POST /v1/chat/completions``: the body as sent, and what routing reads from it."""

    body: dict
    model: str
    stream: bool
    texts: list               # the user turns' text, oldest first (empty turns left out)
    conversation_id: str


def _text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, dict) and p.get("type", "text") == "text" and isinstance(p.get("text"), str))
    return ""


def user_texts(messages):
    """The text of each user turn that has some, oldest first."""
    out = []
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user":
            text = _text(m.get("content"))
            if has_visible_text(text):  # the visible-text rule of every reader: a zero-width turn routes nothing
                out.append(text)
    return out


def parse_chat_request(raw: bytes, *, conversation_header=None) -> ChatRequest:
    """Validate the parts the gateway reads (the upstream judges the rest); RequestError (4xx) on a bad body.

    The body is strict JSON (``NaN``, ``Infinity``, integers past Python's digit limit and lone surrogates are
    400, as in ``POST /route``), so whatever is forwarded or logged can be written back as JSON.
    """
    body = json_body(raw, "'model' and 'messages'")  # strict JSON, as every reader of the project parses it
    if not isinstance(body, dict):
        raise RequestError(422, "the body must be a JSON object with 'model' and 'messages'")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model.strip():
        raise RequestError(422, "'model' must be a non-empty string")
    if not isinstance(messages, list) or not messages:
        raise RequestError(422, "'messages' must be a non-empty array")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise RequestError(422, "every message must be an object with a 'role'")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(422, "'stream' must be true or false")
    texts = user_texts(messages)
    conversation = body.get("user") if isinstance(body.get("user"), str) and body.get("user") else conversation_header
    if not conversation:
        first = texts[0] if texts else ""
        conversation = "h-" + hashlib.sha256(first.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return ChatRequest(body, model.strip(), stream, texts, str(conversation)[:200])
