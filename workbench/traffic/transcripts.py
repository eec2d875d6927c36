"""Read chat exports: the user turns of three common shapes.

- ``messages``: JSONL, one conversation per line, ``{"messages": [{"role", "content"}, ...]}``
  (``content`` a string or a list of parts such as ``{"type": "text", "text": ...}``);
- ``chatgpt``: a ChatGPT-style ``conversations.json`` (a list of conversations, each a
  ``mapping`` of message nodes with ``author.role`` and ``content.parts``);
- ``text``: CSV or JSONL with one message per row in a column named by ``text_column``.

Attachment parts (images, files) become an ``[attachment]`` placeholder so the
import can count them. Bad input raises DataError naming the file and line.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import ConfigError, DataError
from ..io import read_jsonl

__all__ = ["FORMATS", "read_transcripts"]

FORMATS = ("auto", "messages", "chatgpt", "text")


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


def _read_messages_jsonl(path):
    for n, obj in read_jsonl(path):
        msgs = obj.get("messages")
        if not isinstance(msgs, list):
            raise DataError(path, n, "expected a 'messages' list (format 'messages')")
        conv = str(obj.get("id", obj.get("conversation_id", f"{Path(path).stem}:{n}")))
        turn = 0
        for m in msgs:
            if not isinstance(m, dict) or "role" not in m:
                raise DataError(path, n, "every message needs a 'role'")
            if m["role"] == "user":
                turn += 1
                yield {"text": _content_text(m.get("content")), "conversation": conv, "turn": turn, "line": n}


def _read_chatgpt(path):
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(path, None, f"cannot read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, getattr(e, "lineno", None), f"invalid JSON ({getattr(e, 'msg', e)})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(path, None, "expected a list of conversations (format 'chatgpt')")
    for ci, conv in enumerate(data):
        mapping = conv.get("mapping") if isinstance(conv, dict) else None
        if not isinstance(mapping, dict):
            raise DataError(path, None, f"conversation {ci} has no 'mapping' of message nodes")
        cid = str(conv.get("id") or conv.get("conversation_id") or ci)
        # walk the tree from its roots in child order, so turns come out in conversation order
        stack = [k for k, node in reversed(list(mapping.items())) if not (node or {}).get("parent")]
        seen, turn = set(), 0
        while stack:
            key = stack.pop()
            if key in seen or key not in mapping:
                continue
            seen.add(key)
            node = mapping[key] or {}
            msg = node.get("message") or {}
            if (msg.get("author") or {}).get("role") == "user":
                turn += 1
                yield {"text": _content_text(msg.get("content")), "conversation": cid, "turn": turn, "line": None}
            stack.extend(reversed(node.get("children") or []))


def _read_text_rows(path, text_column):
    path = Path(path)
    if path.suffix.lower() == ".csv":
        try:
            with path.open(encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh)
                if text_column not in (reader.fieldnames or []):
                    raise DataError(path, 1, f"no column {text_column!r} (columns: {', '.join(reader.fieldnames or [])})")
                for row in reader:
                    yield {"text": row[text_column] or "", "conversation": None, "turn": None,
                           "line": reader.line_num}
        except OSError as e:
            raise DataError(path, None, f"cannot read ({e.strerror})") from None
        return
    for n, obj in read_jsonl(path):
        if text_column not in obj:
            raise DataError(path, n, f"no field {text_column!r}")
        if obj[text_column] is not None and not isinstance(obj[text_column], str):
            raise DataError(path, n, f"{text_column!r} must be a string, got {type(obj[text_column]).__name__}")
        yield {"text": obj[text_column] or "", "conversation": obj.get("conversation"), "turn": None, "line": n}


def _sniff(path):
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return "text"
    if path.suffix.lower() == ".json":
        return "chatgpt"
    for _, obj in read_jsonl(path):
        return "messages" if "messages" in obj else "text"
    return "text"


def read_transcripts(path, *, fmt="auto", text_column="text"):
    """User turns of one chat export.

    Parameters
    ----------
    path : path
    fmt : {"auto", "messages", "chatgpt", "text"}
        ``auto`` picks by suffix (``.csv`` text, ``.json`` chatgpt) and, for
        JSONL, by whether the first object has ``messages``.
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
            "text": lambda: _read_text_rows(path, text_column)}[fmt]()
    return [dict(r, file=str(path)) for r in rows]
