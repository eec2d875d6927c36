"""Which writing systems a text is written in, and whether a backend's languages cover it (standard library only).

A backend trained on a few languages (USE-multilingual: 16) declares them
(:attr:`workbench.core.embed.Embedder.languages`); a text whose letters lie
mostly outside those languages' scripts is one the backend never learnt, and
its vector lands in an island of its own surface form. Letters are told apart
by Unicode block, after NFC: Vietnamese is its own "script" here (its tone
letters of Latin Extended Additional and ``ơ``/``ư`` are used by no other
language), so a Latin-script backend trained without Vietnamese does not
cover it. A text without letters (digits, emoji) is covered by every backend.
"""
from __future__ import annotations

import bisect
import functools
import unicodedata

from .. import config as _config
from ..errors import ConfigError

__all__ = ["LANGUAGE_SCRIPTS", "script_of", "scripts_of_languages", "covered_share", "covers"]

# (first code point, last code point, script); sorted, not overlapping; letters elsewhere are "other"
_RANGES = sorted([
    (0x41, 0x5A, "latin"), (0x61, 0x7A, "latin"), (0xC0, 0x19F, "latin"), (0x1A0, 0x1A1, "vietnamese"),
    (0x1A2, 0x1AE, "latin"), (0x1AF, 0x1B0, "vietnamese"), (0x1B1, 0x24F, "latin"), (0x1E00, 0x1E9F, "latin"),
    (0x1EA0, 0x1EF9, "vietnamese"), (0x1EFA, 0x1EFF, "latin"), (0xFF21, 0xFF3A, "latin"), (0xFF41, 0xFF5A, "latin"),
    (0x370, 0x3FF, "greek"), (0x400, 0x52F, "cyrillic"), (0x530, 0x58F, "armenian"), (0x590, 0x5FF, "hebrew"),
    (0x600, 0x6FF, "arabic"), (0x750, 0x77F, "arabic"), (0x8A0, 0x8FF, "arabic"), (0xFB50, 0xFDFF, "arabic"),
    (0xFE70, 0xFEFF, "arabic"), (0x900, 0x97F, "devanagari"), (0x980, 0x9FF, "bengali"), (0xA00, 0xA7F, "gurmukhi"),
    (0xA80, 0xAFF, "gujarati"), (0xB80, 0xBFF, "tamil"), (0xC00, 0xC7F, "telugu"), (0xC80, 0xCFF, "kannada"),
    (0xD00, 0xD7F, "malayalam"), (0xE00, 0xE7F, "thai"), (0xE80, 0xEFF, "lao"), (0x1000, 0x109F, "myanmar"),
    (0x10A0, 0x10FF, "georgian"), (0x1100, 0x11FF, "hangul"), (0x1200, 0x139F, "ethiopic"), (0x1780, 0x17FF, "khmer"),
    (0x3040, 0x30FF, "kana"), (0x3100, 0x312F, "bopomofo"), (0x3130, 0x318F, "hangul"), (0x31F0, 0x31FF, "kana"),
    (0x3400, 0x4DBF, "han"), (0x4E00, 0x9FFF, "han"), (0xAC00, 0xD7AF, "hangul"), (0xF900, 0xFAFF, "han"),
    (0xFF66, 0xFF9F, "kana"), (0x20000, 0x2FFFF, "han"),
])
_STARTS = [r[0] for r in _RANGES]

_LATIN = ("latin",)
#: Scripts a language is written in (ISO 639-1 codes as the pool's ``lang``; ``zh-Hant`` traditional Chinese).
LANGUAGE_SCRIPTS = {
    **{code: _LATIN for code in ("en", "fr", "de", "it", "nl", "pl", "pt", "es", "tr", "id", "sv", "tl", "ms")},
    "vi": ("latin", "vietnamese"), "ar": ("arabic",), "zh": ("han",), "zh-Hant": ("han", "bopomofo"),
    "ja": ("han", "kana"), "ko": ("hangul", "han"), "th": ("thai",), "ru": ("cyrillic",), "uk": ("cyrillic",),
    "hi": ("devanagari",), "he": ("hebrew",), "el": ("greek",),
}


def script_of(char):
    """The script of one letter (``"other"`` for a letter of no listed block), or None for a non-letter."""
    if not char.isalpha():
        return None
    code = ord(char)
    i = bisect.bisect_right(_STARTS, code) - 1
    return _RANGES[i][2] if i >= 0 and code <= _RANGES[i][1] else "other"


@functools.lru_cache(maxsize=64)
def _scripts(languages):
    return scripts_of_languages(languages)


def scripts_of_languages(languages):
    """The set of scripts the ``languages`` are written in.

    Raises
    ------
    ConfigError
        For a language :data:`LANGUAGE_SCRIPTS` does not know.
    """
    unknown = sorted(set(languages) - set(LANGUAGE_SCRIPTS))
    if unknown:
        raise ConfigError(f"no scripts known for language(s) {unknown}; add them to LANGUAGE_SCRIPTS")
    return frozenset(s for lang in languages for s in LANGUAGE_SCRIPTS[lang])


def covered_share(text, scripts):
    """Share of the letters of ``text`` (after NFC) written in ``scripts``; 1.0 for a text without letters."""
    text = str(text)
    if text.isascii():  # the common case, and ASCII letters are all Latin
        return 1.0 if "latin" in scripts or not any(c.isalpha() for c in text) else 0.0
    letters = covered = 0
    for char in unicodedata.normalize("NFC", text):
        script = script_of(char)
        if script is not None:
            letters += 1
            covered += script in scripts
    return covered / letters if letters else 1.0


def covers(texts, languages, *, min_share=_config.PART_MIN_COVERED_SHARE):
    """Whether a backend trained on ``languages`` covers each text: a list of bool, one per text.

    A text is covered when at least ``min_share`` of its letters are in the
    scripts of ``languages``; ``languages=None`` (a backend that declares no
    limit) covers every text.
    """
    if languages is None:
        return [True] * len(texts)
    scripts = _scripts(frozenset(languages))
    return [covered_share(t, scripts) >= min_share for t in texts]
