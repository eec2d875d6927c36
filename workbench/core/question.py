"""Long pasted messages routed by their question as well as their context.

A pasted message ("here is the log / the contract / the table ..., which
version is this?") is embedded as a whole, and the whole is mostly paste: its
neighbours are other logs, contracts and tables, so the vote follows the
context (a table votes ``reasoning``, a stack trace ``coding``) while the label
follows the request. For a long message whose closing request
(:func:`closing_request`) is a small part of it, the router also embeds the
request alone and blends the two votes: ``(1 - weight) * whole + weight * question``.

Stored in pool.npz metadata as ``question`` (``{"weight", "min_chars"}``); a
pool without it routes every message whole.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ArtifactError, ConfigError

__all__ = ["closing_request", "QuestionBlend"]

#: A closing line longer than this is part of the paste, not the user's request: its last characters are kept.
REQUEST_CHARS = 300


def closing_request(text) -> str:
    """The user's closing request: the last non-empty line, or its last ``300`` characters when it is longer."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    return last[-REQUEST_CHARS:]


@dataclass(frozen=True)
class QuestionBlend:
    """Blend the vote of a long message's closing request with the whole message's.

    Parameters
    ----------
    weight : float
        The request's share of the blended vote, in [0, 1]; 0 routes every message whole.
    min_chars : int
        Messages shorter than this are routed whole; so is a message whose request is more than half of it.
    """

    weight: float = 0.0
    min_chars: int = 400

    def __post_init__(self):
        if not (isinstance(self.weight, (int, float)) and 0.0 <= self.weight <= 1.0):
            raise ConfigError(f"question weight must be in [0, 1]; got {self.weight!r}")
        if not (isinstance(self.min_chars, int) and self.min_chars >= 1):
            raise ConfigError(f"question min_chars must be an int >= 1; got {self.min_chars!r}")

    def requests(self, texts):
        """``(rows, requests)``: the messages read twice and their closing requests."""
        rows, requests = [], []
        if self.weight > 0:
            for i, text in enumerate(texts):
                text = str(text)
                if len(text) >= self.min_chars:
                    request = closing_request(text)
                    if request and 2 * len(request) <= len(text):
                        rows.append(i)
                        requests.append(request)
        return np.asarray(rows, np.int64), requests

    def blend(self, shares, rows, request_shares):
        """``shares`` with the ``rows`` blended with their requests' shares (a new array)."""
        out = np.array(shares, np.float64, copy=True)
        if len(rows):
            out[rows] = (1.0 - self.weight) * out[rows] + self.weight * np.asarray(request_shares, np.float64)
        return out

    def to_metadata(self):
        return {"weight": float(self.weight), "min_chars": int(self.min_chars)}

    @classmethod
    def from_metadata(cls, meta):
        if not meta:
            return cls()
        try:
            return cls(float(meta["weight"]), int(meta["min_chars"]))
        except (KeyError, TypeError, ValueError, ConfigError) as e:
            raise ArtifactError(f"bad question metadata {meta!r}: {e}") from None
