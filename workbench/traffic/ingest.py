"""Import chat transcripts: user turns -> filtered, unlabelled candidate messages.

Reads the chat exports :mod:`workbench.transcripts` knows, keeps user turns
only, applies the filters of :data:`FILTERS` (each counted), scrubs e-mail
addresses, phone numbers and long digit runs (:mod:`workbench.traffic.scrub`;
on by default, with the conversation ids and origins that carry one), detects
the language with ``langid`` (its model ships inside the package) and writes
the candidates to a new JSONL file. The input is never rewritten.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from .. import config as _config
from ..errors import ConfigError
from ..io import normalize_text, text_hash, write_text_atomic
from ..core.text import has_visible_text
from .scrub import scrub_id, scrub_text
from .transcripts import FORMATS, read_transcripts

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "FILTERS", "read_transcripts", "scrub_text", "detect_language", "import_summary_table",
           "filter_messages", "import_transcripts"]

#: Summary keys, in the order the filters run.
FILTERS = ("empty", "url_only", "attachment_only", "too_short", "too_long", "exact_duplicate",
           "normalized_duplicate", "pool_duplicate", "near_duplicate_pool", "near_duplicate")

_URL_ONLY = re.compile(r"^\s*(?:<?(?:https?://|www\.)\S+>?\s*)+$", re.I)
_PLACEHOLDER = (r"[\[<(]\s*(?:image|photo|picture|attachment|file|audio|video|voice message|sticker|gif|document|"
                r"media)(?:\s+(?:omitted|attached|removed))?\s*[\]>)]|<?media omitted>?|image omitted")
_ATTACHMENT_ONLY = re.compile(rf"^\s*(?:(?:{_PLACEHOLDER})\s*)+$", re.I)


def detect_language(text: str) -> str:
    """ISO 639-1 code from ``langid`` (bundled model; nothing is downloaded)."""
    try:
        import langid
    except ImportError:
        raise ConfigError("language detection needs the package 'langid': pip install 'langid==1.1.6'") from None
    return langid.classify(text)[0]


def filter_messages(rows, *, min_chars=_config.IMPORT_MIN_CHARS, max_chars=_config.IMPORT_MAX_CHARS, scrub=True, pool_texts=(), pool_vectors=None,
                    embedder=None, cache_dir=None, dup_threshold=_config.DUP_THRESHOLD, shards=None):
    """Apply the filters of :data:`FILTERS` in order; returns ``(kept rows, summary)``.

    Near-duplicates (cosine >= ``dup_threshold``) are judged under ``embedder``
    against ``pool_vectors`` and against the messages kept before them; pass
    ``embedder=None`` to skip both. Vectors found in ``shards`` (of ``workbench embed``) are not embedded again.
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
        if not has_visible_text(text):
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
        from ..dataset.embeddings import embed_texts

        from ..dataset.duplicates import first_of_near_duplicates, max_similarity

        x = embed_texts([r["text"] for r in kept], embedder, cache_dir=cache_dir, shards=shards)
        near_pool = np.zeros(len(kept), bool)
        if pool_vectors is not None and len(pool_vectors):
            near_pool = max_similarity(x, pool_vectors) >= dup_threshold
        rest = np.flatnonzero(~near_pool)
        first = first_of_near_duplicates(x[rest], dup_threshold)
        summary["near_duplicate_pool"] += int(near_pool.sum())
        summary["near_duplicate"] += int((~first).sum())
        kept = [kept[i] for i in rest[first]]
    summary["kept"] = len(kept)
    return kept, summary


def import_transcripts(paths, out, *, fmt="auto", text_column="text", min_chars=_config.IMPORT_MIN_CHARS, max_chars=_config.IMPORT_MAX_CHARS, scrub=True,
                       pool=None, taxonomy=None, backend=None, cache_dir=None, dup_threshold=_config.DUP_THRESHOLD, id_prefix="real",
                       shards=None):
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
    shards : path or list of paths, optional
        Shards of ``workbench embed`` holding these messages' vectors (embedded once, not again here).

    Returns
    -------
    dict
        Counts per filter (:data:`FILTERS`), ``read``, ``scrubbed``, ``kept``,
        ``languages`` (count per language) and ``out``.
    """

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out = Path(out)
    if any(Path(p).resolve() == out.resolve() for p in paths):
        raise ConfigError(f"out must be a new file, not one of the inputs; got {out}")
    rows = [r for p in paths for r in read_transcripts(p, fmt=fmt, text_column=text_column)]
    embedder, pool_texts, pool_vectors = None, [], None
    if backend is not False:
        from ..core.embed import Embedder, get_embedder

        embedder = backend if isinstance(backend, Embedder) else get_embedder(backend)
    if pool is not False:
        from ..dataset.pool import load_pool

        frame = load_pool(pool, taxonomy).frame
        pool_texts = list(frame["text"])
        if embedder is not None:
            from ..dataset.embeddings import embed_texts

            pool_vectors = embed_texts(pool_texts, embedder, cache_dir=cache_dir)
    kept, summary = filter_messages(rows, min_chars=min_chars, max_chars=max_chars, scrub=scrub,
                                    pool_texts=pool_texts, pool_vectors=pool_vectors, embedder=embedder,
                                    cache_dir=cache_dir, dup_threshold=dup_threshold, shards=shards)
    lines, langs = [], {}
    for r in kept:
        lang = detect_language(r["text"])
        langs[lang] = langs.get(lang, 0) + 1
        name, conversation = Path(r["file"]).name, r["conversation"]
        if scrub:  # these travel into the pool with the message: a file named after a phone number, an e-mail as id
            name, conversation = scrub_id(name, "file"), scrub_id(conversation, "conv")
        origin = f"{name}:{r['line']}" if r["line"] else name
        obj = {"id": f"{id_prefix}-{text_hash(r['text'])[:12]}", "text": r["text"], "lang": lang,
               "source": "real", "conversation": conversation, "turn": r["turn"], "origin": origin}
        lines.append(json.dumps(obj, ensure_ascii=False, allow_nan=False))
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    summary["languages"] = dict(sorted(langs.items(), key=lambda kv: (-kv[1], kv[0])))
    summary["out"] = str(out)
    log.info("imported %d of %d user turns into %s", summary["kept"], summary["read"], out)
    return summary


def import_summary_table(summary):
    """An import summary as a one-column table: turns read, dropped per filter, kept."""
    import pandas as pd

    return pd.DataFrame({"messages": [summary["read"]] + [summary[k] for k in FILTERS] + [summary["kept"]]},
                        index=["user turns read"] + [f"dropped: {k.replace('_', ' ')}" for k in FILTERS] + ["kept"])
