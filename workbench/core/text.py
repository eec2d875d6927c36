"""Text as an encoder sees it, in one place (standard library only).

Every backend gets its input through :meth:`workbench.core.embed.Embedder.encode`,
which calls :func:`prepare_text` on each message, and every reader's "not
empty" check calls :func:`has_visible_text`, so what is refused at the door
and what reaches a model follow the same rules:

- **Control characters** (C0 except tab, newline and carriage return; DEL;
  C1) become a space. A NUL used to end the text for the default backend
  (its C library reads up to the first NUL): ``"hi \\0 write a quicksort"``
  embedded like ``"hi"``. Lone surrogates (from JSON ``\\ud800`` escapes)
  become U+FFFD, since they cannot be encoded as UTF-8.
- **A length cap** per backend (``Embedder.max_chars``, default
  :data:`workbench.config.MAX_TEXT_CHARS` = 2,048 characters, about 512
  tokens of English text, the window of the E5 and MiniLM models): a longer
  text keeps its beginning and its end (:func:`clip_text`: the last
  :data:`~workbench.config.MAX_TEXT_TAIL_CHARS` characters, from a line
  start when there is one), joined by :data:`CLIP_MARK`. Without a cap the
  default backend embeds every 512-token window of a text, so cost grows
  with length (a 60k-character message cost about 20x a 1k one) and one
  long line stalls a stream behind it. The routing signal of a chat message
  is in its beginning, *and* in its end when it pastes a long context and
  asks its question after it ("... so what time do I need to be there?"):
  cutting at the cap alone dropped that question.
- **Invisible-only text** (whitespace, control and format characters such as
  zero-width spaces and joiners, combining marks on nothing, Hangul fillers,
  the braille blank) counts as empty: :func:`has_visible_text` is False.

Nothing else changes (no case folding, no Unicode normalisation, newlines
kept), so the vector of a message within the cap is what it always was and
the embedding cache, keyed by the prepared text, stays valid for it (only
texts over the cap got new keys when the tail was added).
"""
from __future__ import annotations

import re
import unicodedata

from .. import config as _config

__all__ = ["prepare_text", "clip_text", "has_visible_text", "is_clipped", "message_problem", "CLIP_MARK"]

#: Between the kept beginning and end of a clipped text.
CLIP_MARK = "\n[...]\n"

#: C0 controls except \t \n \r, DEL and the C1 block.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_BLANKS = re.compile(r"\s{2,}")
#: Unicode categories that draw nothing on their own.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
#: Letters by category that render as blanks (Hangul fillers, braille blank, Mongolian vowel separator).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")


def prepare_text(text, max_chars=None) -> str:
    """The text an encoder gets: controls made spaces, lone surrogates replaced, cut at ``max_chars``.

    Idempotent, so preparing twice (a cache key, then ``encode``) is harmless.
    """
    text = _CONTROLS.sub(" ", str(text))
    if _SURROGATES.search(text):
        text = _SURROGATES.sub("\ufffd", text)
    if max_chars is not None and len(text) > max_chars:
        # blanks cost no meaning: 2,048 leading spaces used to push the whole question past the cap
        text = clip_text(_BLANKS.sub(" ", text).strip(), max_chars)
    return text


def clip_text(text, max_chars, *, tail_chars=_config.MAX_TEXT_TAIL_CHARS) -> str:
    """At most ``max_chars`` characters of ``text``: its beginning, :data:`CLIP_MARK`, and its end.

    The end is the last ``tail_chars`` characters (at most a quarter of
    ``max_chars``), starting after a line break in its first half when there
    is one, so it opens on the line that asks the question. A text within
    ``max_chars`` comes back unchanged; a cap too small for the mark keeps the beginning only.
    """
    if len(text) <= max_chars:
        return text
    tail = min(tail_chars, max_chars // 4)
    head = max_chars - tail - len(CLIP_MARK)
    if tail < 1 or head < 1:
        return text[:max_chars]
    end = text[len(text) - tail:]
    cut = end.find("\n", 0, tail // 2)
    if cut >= 0:
        end = end[cut + 1:]
    return text[:head] + CLIP_MARK + end


def has_visible_text(text) -> bool:
    """Whether ``text`` is a string with at least one character that shows (see the module docstring)."""
    if not isinstance(text, str):
        return False
    return any(c not in _BLANK_LETTERS and unicodedata.category(c) not in _INVISIBLE for c in text)


def is_clipped(text, max_chars) -> bool:
    """Whether :func:`prepare_text` cuts ``text`` at ``max_chars``."""
    return max_chars is not None and len(str(text)) > max_chars


def message_problem(obj, *, labelled=False, taxonomy=None):
    """What is wrong with one message object, or None: the one rule of every message reader.

    ``text`` present and visible (:func:`has_visible_text`);
    with ``labelled``, ``category`` (and ``alt_category`` when given) a known
    category name of ``taxonomy`` (a list or an object is reported, not hashed).
    """
    text = obj.get("text")
    if text is None and isinstance(obj.get("turns"), list):
        return "this line is a conversation ('turns', no 'text'): pass --conversation to route conversations"
    if not isinstance(text, str) or not text.strip():
        return "missing or empty 'text'"
    if not has_visible_text(text):
        return "'text' has no visible characters"
    if labelled:
        for key in ("category", "alt_category"):
            value = obj.get(key)
            if key == "alt_category" and not value:
                continue
            if key == "category" and value is None:
                return ("missing 'category': score needs labelled messages ('text' and 'category'); "
                        "route unlabelled ones with workbench route")
            if not isinstance(value, str) or value not in taxonomy.tier_map:
                return f"unknown {key} {value!r:.60} (known: {', '.join(taxonomy.categories)})"
    return None
