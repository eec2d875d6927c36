"""Scrub contact details from imported messages before they go anywhere (the label API, the pool).

What is replaced (``workbench import`` does it unless ``--no-scrub``):

- e-mail addresses -> ``[email]``;
- phone numbers -> ``[phone]``: international ones (``+`` or ``00`` and a
  country code, in any grouping, found with the ``phonenumbers`` library:
  one-digit groups after the country code, five-digit groups, ``/`` and
  ``(0)``), and national ones: digit groups joined by spaces, dots, dashes,
  slashes or parentheses with 8 digits or more (``030/12345678``,
  ``12 34 56 78``, ``555-123-4567``);
- runs of 9 digits or more (account, card and id numbers) -> ``[number]``.

Matching sees a folded copy of the text (:func:`fold`): NFKC per character
(full-width digits, ``＠``), every Unicode dash and minus as ``-``, every
Unicode space and invisible format character as a space, every decimal digit
as its ASCII digit; one character for one, so a match in the copy is
replaced at the same place in the original and the rest of the text is kept
as it was. E-mail domains may be non-ASCII (``ivan@пример.рф``).

Kept: decimal numbers (``3.14159265``), dates (``2026-11-25``, ``25.11.2026``, ``11/25/2026``), year ranges
(``1939-1945``), times, and short numbers such as those of maths questions.
A long grouped number that is not a phone (``250 000 000``) is scrubbed
too: a false ``[phone]`` costs a pool candidate little, a missed number is
a leak. Names and street addresses are not detected.

Id-like fields that travel with a message into the pool (the conversation id,
the origin file name) are scrubbed as well: see :func:`scrub_id`.
"""
from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

from ..errors import require

__all__ = ["scrub_text", "scrub_id", "fold"]

#: A top-level domain: two letters or more in any script, or an IDNA ``xn--`` label.
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.(?:xn--[\w-]+|[^\W\d_]{2,})\b", re.I)
_DIGITS = re.compile(r"(?<!\d)(?<!\d\.)\d{9,}(?!\d)")
#: A decimal number (``3.14159265``, ``2,5``): not a phone number.
_DECIMAL = re.compile(r"(?:0|[1-9]\d{0,2})[.,]\d+")
#: A run of digits joined by phone separators (single spaces, dots, dashes, slashes, parentheses).
_PHONE_RUN = re.compile(r"(?<![\w.,+/-])(?:\+|\()?\d(?:[ ./-]?\(?\d|\)[ ./-]?\d)*(?![\w])")
_DATE = re.compile(r"\d{4}([-./])\d{1,2}\1\d{1,2}|\d{1,2}([-./])\d{1,2}\2\d{2,4}")
_YEAR = re.compile(r"1[5-9]\d\d|20\d\d")


@functools.lru_cache(maxsize=1)
def _phonenumbers():
    return require("phonenumbers", purpose="scrubbing phone numbers")


def _national_phone(s):
    """Whether a run of grouped digits is a phone number rather than a date, a year range or a list of digits."""
    groups = re.findall(r"\d+", s)
    digits = sum(map(len, groups))
    international = s.startswith(("+", "00"))
    if digits < (7 if international else 8) or _DATE.fullmatch(s) or _DECIMAL.fullmatch(s):
        return False
    if len(groups) > 1 and all(len(g) == 4 and _YEAR.fullmatch(g) for g in groups):
        return False
    return sum(len(g) == 1 for g in groups) <= (2 if international else 1)


@functools.lru_cache(maxsize=4096)
def _fold_char(c):
    cat = unicodedata.category(c)
    if cat == "Pd" or c == "\u2212":
        return "-"
    if cat in ("Zs", "Cf"):
        return " "
    if cat == "Nd":
        return str(unicodedata.decimal(c, 0))
    n = unicodedata.normalize("NFKC", c)
    return n if len(n) == 1 else c


def fold(text: str) -> str:
    """``text`` as the patterns see it, one character for one (see the module docstring)."""
    return text if text.isascii() else "".join(c if c.isascii() else _fold_char(c) for c in text)


def _replace(pair, spans, repl):
    """Replace ``spans`` of the folded text, and the same spans of the original, by ``repl``."""
    original, folded = pair
    for start, end in reversed(spans):
        original = original[:start] + repl + original[end:]
        folded = folded[:start] + repl + folded[end:]
    return (original, folded), len(spans)


def _sub(pattern, repl, pair, accept=None):
    spans = [m.span() for m in pattern.finditer(pair[1]) if accept is None or accept(m.group(0))]
    return _replace(pair, spans, repl)


def _international(pair):
    pn = _phonenumbers()
    spans = [(m.start, m.end) for m in pn.PhoneNumberMatcher(pair[1], None, leniency=pn.Leniency.POSSIBLE)]
    return _replace(pair, spans, "[phone]")


def scrub_text(text: str):
    """Replace e-mail addresses, phone numbers and long digit runs; returns ``(text, replacements)``."""
    pair = (text, fold(text))
    pair, a = _sub(_EMAIL, "[email]", pair)
    pair, b = _international(pair) if "+" in pair[1] else (pair, 0)
    pair, c = _sub(_DIGITS, "[number]", pair)
    pair, d = _sub(_PHONE_RUN, "[phone]", pair, _national_phone)
    return pair[0], a + b + c + d


def scrub_id(value, prefix):
    """An id-like field (conversation id, file name) safe to keep: as it is when nothing in it needs scrubbing,
    else ``<prefix>-<12 hex of its SHA-256>`` (stable, so turns of one conversation still group)."""
    if value is None:
        return None
    value = str(value)
    # ids join words with '-', '_' or ':' ("conv-555-123-4567"): a phone number must not hide behind one
    split = re.sub(r"(?<=[^\W\d_])-|[_:]", " ", fold(value))
    if scrub_text(value)[1] == 0 and scrub_text(split)[1] == 0:
        return value
    return f"{prefix}-{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
