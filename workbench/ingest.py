"""Import chat transcripts: user turns -> filtered, unlabelled candidate messages.

Reads three shapes of chat export:

- ``messages``: JSONL, one conversation per line, ``{"messages": [{"role", "content"}, ...]}``
  (``content`` a string or a list of parts such as ``{"type": "text", "text": ...}``);
- ``chatgpt``: a ChatGPT-style ``conversations.json`` (a list of conversations, each a
  ``mapping`` of message nodes with ``author.role`` and ``content.parts``);
- ``text``: CSV or JSONL with one message per row in a column named by ``text_column``.

Keeps user turns only, applies the filters of :data:`FILTERS` (each counted),
optionally scrubs e-mail addresses, phone numbers and long digit runs, detects
the language with ``langid`` (its model ships inside the package) and writes
the candidates to a new JSONL file. The input is never rewritten.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from pathlib import Path

from .errors import ConfigError, DataError
from .pool import normalize_text, read_jsonl

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "FILTERS", "read_transcripts", "scrub_text", "detect_language", "message_hash",
           "filter_messages", "import_transcripts"]

FORMATS = ("auto", "messages", "chatgpt", "text")
#: Summary keys, in the order the filters run.
FILTERS = ("empty", "url_only", "attachment_only", "too_short", "too_long", "exact_duplicate",
           "normalized_duplicate", "pool_duplicate", "near_duplicate_pool", "near_duplicate")

_URL_ONLY = re.compile(r"^\s*(?:<?(?:https?://|www\.)\S+>?\s*)+$", re.I)
_PLACEHOLDER = (r"[\[<(]\s*(?:image|photo|picture|attachment|file|audio|video|voice message|sticker|gif|document|"
                r"media)(?:\s+(?:omitted|attached|removed))?\s*[\]>)]|<?media omitted>?|image omitted")
_ATTACHMENT_ONLY = re.compile(rf"^\s*(?:(?:{_PLACEHOLDER})\s*)+$", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.I)
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,8}){1,4}(?![\w])")
_DIGITS = re.compile(r"\d{9,}")


def message_hash(text: str) -> str:
    """SHA-256 of the exact message text: the key of the label cache and of candidate ids."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


def scrub_text(text: str):
    """Replace e-mail addresses, phone numbers and long digit runs; returns ``(text, replacements)``.

    A phone number needs at least 9 digits or a leading ``+``, so dates and
    short numbers in maths questions survive.
    """
    count = 0

    def sub(pattern, repl, s, accept=lambda m: True):
        nonlocal count

        def f(m):
            nonlocal count
            if accept(m):
                count += 1
                return repl
            return m.group(0)
        return pattern.sub(f, s)

    text = sub(_EMAIL, "[email]", text)
    text = sub(_PHONE, "[phone]", text,
               lambda m: sum(c.isdigit() for c in m.group(0)) >= 9 or m.group(0).startswith("+"))
    text = sub(_DIGITS, "[number]", text)
    return text, count


def detect_language(text: str) -> str:
    """ISO 639-1 code from ``langid`` (bundled model; nothing is downloaded)."""
    try:
        import langid
    except ImportError:
        raise ConfigError("language detection needs the package 'langid': pip install 'langid==1.1.6'") from None
    return langid.classify(text)[0]


def filter_messages(rows, *, min_chars=2, max_chars=4000, scrub=False, pool_texts=(), pool_vectors=None,
                    embedder=None, cache_dir=None, dup_threshold=0.95):
    """Apply the filters of :data:`FILTERS` in order; returns ``(kept rows, summary)``.

    Near-duplicates (cosine >= ``dup_threshold``) are judged under ``embedder``
    against ``pool_vectors`` and against the messages kept before them; pass
    ``embedder=None`` to skip both.
    """
    import numpy as np

    if min_chars < 0 or max_chars < min_chars:
        raise ConfigError(f"need 0 <= min_chars <= max_chars; got {min_chars}, {max_chars}")
    summary = {"read": len(rows), **{k: 0 for k in FILTERS}, "scrubbed": 0, "kept": 0}
    seen_raw, seen_norm = set(), set()
    pool_norm = {normalize_text(t) for t in pool_texts}
    kept = []
    for r in rows:
        text = r["text"].strip()
        reason = None
        if not text:
            reason = "empty"
        elif _URL_ONLY.match(text):
            reason = "url_only"
        elif _ATTACHMENT_ONLY.match(text):
            reason = "attachment_only"
        elif len(text) < min_chars:
            reason = "too_short"
        elif len(text) > max_chars:
            reason = "too_long"
        if reason is None and scrub:
            text, n = scrub_text(text)
            summary["scrubbed"] += bool(n)
        norm = normalize_text(text)
        if reason is None:
            reason = ("exact_duplicate" if text in seen_raw else "normalized_duplicate" if norm in seen_norm
                      else "pool_duplicate" if norm in pool_norm else None)
        if reason:
            summary[reason] += 1
            continue
        seen_raw.add(text)
        seen_norm.add(norm)
        kept.append(dict(r, text=text))
    if embedder is not None and kept:
        from .embed import embed_texts

        x = embed_texts([r["text"] for r in kept], embedder, cache_dir=cache_dir)
        near_pool = np.zeros(len(kept), bool)
        if pool_vectors is not None and len(pool_vectors):
            near_pool = (x @ np.asarray(pool_vectors, np.float32).T).max(axis=1) >= dup_threshold
        keep_idx = []
        for i in range(len(kept)):
            if near_pool[i]:
                summary["near_duplicate_pool"] += 1
            elif keep_idx and float((x[keep_idx] @ x[i]).max()) >= dup_threshold:
                summary["near_duplicate"] += 1
            else:
                keep_idx.append(i)
        kept = [kept[i] for i in keep_idx]
    summary["kept"] = len(kept)
    return kept, summary


def import_transcripts(paths, out, *, fmt="auto", text_column="text", min_chars=2, max_chars=4000, scrub=False,
                       pool=None, taxonomy=None, backend=None, cache_dir=None, dup_threshold=0.95, id_prefix="real"):
    """Read chat exports, filter the user turns and write unlabelled candidates.

    Parameters
    ----------
    paths : path or list of paths
        Chat exports (see the module docstring for the shapes).
    out : path
        New JSONL file of candidates (``id``, ``text``, ``lang``, ``source``,
        ``conversation``, ``turn``, ``origin``); written atomically; must not
        be one of the inputs.
    pool : path, list or False, optional
        Pool sources to de-duplicate against (default ``data/pool``);
        ``False`` skips the pool.
    backend : str or Embedder, optional
        Embedding backend for near-duplicates (the pool's, default e5-small);
        ``False`` skips near-duplicate filtering.
    id_prefix : str
        Candidate ids are ``<prefix>-<first 12 hex of the text hash>``.

    Returns
    -------
    dict
        Counts per filter (:data:`FILTERS`), ``read``, ``scrubbed``, ``kept``,
        ``languages`` (count per language) and ``out``.
    """
    from .io import write_text_atomic

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out = Path(out)
    if any(Path(p).resolve() == out.resolve() for p in paths):
        raise ConfigError(f"out must be a new file, not one of the inputs; got {out}")
    rows = [r for p in paths for r in read_transcripts(p, fmt=fmt, text_column=text_column)]
    embedder, pool_texts, pool_vectors = None, [], None
    if backend is not False:
        from .embed import Embedder, get_embedder

        embedder = backend if isinstance(backend, Embedder) else get_embedder(backend)
    if pool is not False:
        from .pool import load_pool

        frame = load_pool(pool, taxonomy)
        pool_texts = list(frame["text"])
        if embedder is not None:
            from .embed import embed_texts

            pool_vectors = embed_texts(pool_texts, embedder, cache_dir=cache_dir)
    kept, summary = filter_messages(rows, min_chars=min_chars, max_chars=max_chars, scrub=scrub,
                                    pool_texts=pool_texts, pool_vectors=pool_vectors, embedder=embedder,
                                    cache_dir=cache_dir, dup_threshold=dup_threshold)
    lines, langs = [], {}
    for r in kept:
        lang = detect_language(r["text"])
        langs[lang] = langs.get(lang, 0) + 1
        origin = f"{Path(r['file']).name}:{r['line']}" if r["line"] else Path(r["file"]).name
        obj = {"id": f"{id_prefix}-{message_hash(r['text'])[:12]}", "text": r["text"], "lang": lang,
               "source": "real", "conversation": r["conversation"], "turn": r["turn"], "origin": origin}
        lines.append(json.dumps(obj, ensure_ascii=False))
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    summary["languages"] = dict(sorted(langs.items(), key=lambda kv: (-kv[1], kv[0])))
    summary["out"] = str(out)
    log.info("imported %d of %d user turns into %s", summary["kept"], summary["read"], out)
    return summary
