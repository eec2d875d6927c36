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

Kept: dates (``2026-11-25``, ``25.11.2026``, ``11/25/2026``), year ranges
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

from ..errors import require

__all__ = ["scrub_text", "scrub_id"]

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.I)
_DIGITS = re.compile(r"(?<!\d)\d{9,}(?!\d)")
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
    if digits < (7 if international else 8) or _DATE.fullmatch(s):
        return False
    if len(groups) > 1 and all(len(g) == 4 and _YEAR.fullmatch(g) for g in groups):
        return False
    return sum(len(g) == 1 for g in groups) <= (2 if international else 1)


def _sub(pattern, repl, text, accept=None):
    count = 0

    def f(m):
        nonlocal count
        if accept is None or accept(m.group(0)):
            count += 1
            return repl
        return m.group(0)
    return pattern.sub(f, text), count


def _international(text):
    pn = _phonenumbers()
    spans = [(m.start, m.end) for m in pn.PhoneNumberMatcher(text, None, leniency=pn.Leniency.POSSIBLE)]
    for start, end in reversed(spans):
        text = text[:start] + "[phone]" + text[end:]
    return text, len(spans)


def scrub_text(text: str):
    """Replace e-mail addresses, phone numbers and long digit runs; returns ``(text, replacements)``."""
    text, a = _sub(_EMAIL, "[email]", text)
    text, b = _international(text) if "+" in text else (text, 0)
    text, c = _sub(_DIGITS, "[number]", text)
    text, d = _sub(_PHONE_RUN, "[phone]", text, _national_phone)
    return text, a + b + c + d


def scrub_id(value, prefix):
    """An id-like field (conversation id, file name) safe to keep: as it is when nothing in it needs scrubbing,
    else ``<prefix>-<12 hex of its SHA-256>`` (stable, so turns of one conversation still group)."""
    if value is None:
        return None
    value = str(value)
    if scrub_text(value)[1] == 0:
        return value
    return f"{prefix}-{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
