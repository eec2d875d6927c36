"""Read chat exports: the user turns of three common shapes.

- ``messages``: JSONL, one conversation per line, ``{"messages": [{"role", "content"}, ...]}``
  (``content`` a string or a list of parts such as ``{"type": "text", "text": ...}``);
- ``chatgpt``: a ChatGPT-style ``conversations.json`` (a list of conversations, each a
  ``mapping`` of message nodes with ``author.role`` and ``content.parts``);
- ``text``: CSV or JSONL with one message per row in a column named by ``text_column``;
- ``decisions``: the gateway's decision log (see :mod:`.decision_log`).

Attachment parts (images, files) become an ``[attachment]`` placeholder so the
import can count them. Bad input raises DataError naming the file and line.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import ConfigError, DataError
from ..io import parse_json, read_jsonl, read_text_file
from .decision_log import is_decision_record, read_decision_log

__all__ = ["FORMATS", "read_transcripts"]

FORMATS = ("auto", "messages", "chatgpt", "text", "decisions")


def _content_text(content):
    """Text of a message's content (string or list of parts); ``None`` parts mean attachments."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):  # ChatGPT node content: {"content_type", "parts": [...]}
        content = content.get("parts") or ([content["text"]] if isinstance(content.get("text"), str) else [])
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
            else:  # an image or file part: keep a placeholder so the filter can count it
                out.append("[attachment]")
        return "\n".join(p for p in out if p)
    return ""


def _conversation_id(value, fallback):
    """A conversation id as text: strings and numbers as they are, anything else (a list, an object) not trusted."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return fallback


def _read_messages_jsonl(path):
    for n, obj in read_jsonl(path):
        msgs = obj.get("messages")
        if not isinstance(msgs, list):
            raise DataError(path, n, "expected a 'messages' list (format 'messages')")
        conv = _conversation_id(obj.get("id", obj.get("conversation_id")), f"{Path(path).stem}:{n}")
        turn = 0
        for m in msgs:
            if not isinstance(m, dict) or "role" not in m:
                raise DataError(path, n, "every message needs a 'role'")
            if m["role"] == "user":
                turn += 1
                yield {"text": _content_text(m.get("content")), "conversation": conv, "turn": turn, "line": n}


def _obj(value):
    """``value`` when it is a JSON object, else an empty one: malformed nodes are skipped, never crash the walk."""
    return value if isinstance(value, dict) else {}


def _read_chatgpt(path):
    data, problem = parse_json(read_text_file(path))
    if problem:
        raise DataError(path, None, problem)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(path, None, "expected a list of conversations (format 'chatgpt')")
    for ci, conv in enumerate(data):
        mapping = conv.get("mapping") if isinstance(conv, dict) else None
        if not isinstance(mapping, dict):
            raise DataError(path, None, f"conversation {ci} has no 'mapping' of message nodes")
        cid = _conversation_id(conv.get("id") or conv.get("conversation_id"), str(ci))
        # walk the tree from its roots in child order, so turns come out in conversation order
        stack = [k for k, node in reversed(list(mapping.items())) if not _obj(node).get("parent")]
        seen, turn = set(), 0
        while stack:
            key = stack.pop()
            if not isinstance(key, str) or key in seen or key not in mapping:
                continue
            seen.add(key)
            node = _obj(mapping[key])
            msg = _obj(node.get("message"))
            if _obj(msg.get("author")).get("role") == "user":
                turn += 1
                yield {"text": _content_text(msg.get("content")), "conversation": cid, "turn": turn, "line": None}
            children = node.get("children")
            stack.extend(reversed(children) if isinstance(children, list) else [])


def _read_csv(path, text_column):
    reader = csv.DictReader(io.StringIO(read_text_file(path), newline=""))
    try:
        if text_column not in (reader.fieldnames or []):
            raise DataError(path, 1, f"no column {text_column!r} (columns: {', '.join(reader.fieldnames or [])})")
        for row in reader:
            text = row.get(text_column)
            yield {"text": text if isinstance(text, str) else "", "conversation": None, "turn": None,
                   "line": reader.line_num}
    except csv.Error as e:
        if "field larger than field limit" in str(e):
            raise DataError(path, reader.line_num, f"a field longer than {csv.field_size_limit()} characters "
                                                   "(not a chat message)") from None
        raise DataError(path, reader.line_num, f"malformed CSV ({e})") from None


def _read_text_rows(path, text_column):
    path = Path(path)
    if path.suffix.lower() == ".csv":
        yield from _read_csv(path, text_column)
        return
    for n, obj in read_jsonl(path):
        if text_column not in obj:
            raise DataError(path, n, f"no field {text_column!r}")
        if obj[text_column] is not None and not isinstance(obj[text_column], str):
            raise DataError(path, n, f"{text_column!r} must be a string, got {type(obj[text_column]).__name__}")
        yield {"text": obj[text_column] or "", "conversation": _conversation_id(obj.get("conversation"), None),
               "turn": None, "line": n}


def _sniff(path):
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return "text"
    if path.suffix.lower() == ".json":
        return "chatgpt"
    for _, obj in read_jsonl(path):
        return "messages" if "messages" in obj else "decisions" if is_decision_record(obj) else "text"
    return "text"


def read_transcripts(path, *, fmt="auto", text_column="text"):
    """User turns of one chat export.

    Parameters
    ----------
    path : path
    fmt : {"auto", "messages", "chatgpt", "text", "decisions"}
        ``auto`` picks by suffix (``.csv`` text, ``.json`` chatgpt) and, for
        JSONL, by whether the first object has ``messages`` or is a decision record.
    text_column : str
        Column or field holding the message for the ``text`` format.

    Returns
    -------
    list of dict with ``text``, ``conversation``, ``turn``, ``file``, ``line``.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"fmt must be one of {FORMATS}; got {fmt!r}")
    fmt = _sniff(path) if fmt == "auto" else fmt
    rows = {"messages": lambda: _read_messages_jsonl(path), "chatgpt": lambda: _read_chatgpt(path),
            "text": lambda: _read_text_rows(path, text_column), "decisions": lambda: read_decision_log(path)}[fmt]()
    return [dict(r, file=str(path)) for r in rows]
