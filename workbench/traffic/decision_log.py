"""Reading the gateway's decision log (``decisions-YYYY-MM-DD.jsonl``) as one more transcript format.

Each line is one routed request (see :mod:`workbench.serve.records`); its
``text`` is the routed user turn, already scrubbed unless the gateway ran
with ``--log-text full``. A line without ``text`` (``--log-text none``) gives
an empty turn, which the import's filters count and drop. ``workbench import``
reads these files with ``--format decisions`` (or ``auto``), so logged traffic
enters the labelling loop.
"""
from __future__ import annotations

from ..errors import DataError
from ..io import read_jsonl

__all__ = ["read_decision_log", "is_decision_record"]


def is_decision_record(obj) -> bool:
    """Whether a JSON object looks like a decision-log line."""
    return isinstance(obj, dict) and "request_id" in obj and "text_sha256" in obj


def read_decision_log(path):
    """User turns of a decision-log file: ``text``, ``conversation``, ``turn``, ``line`` per record.

    Raises
    ------
    DataError
        A line that is not a decision record, or whose ``text`` is not a string.
    """
    for n, obj in read_jsonl(path):
        if not is_decision_record(obj):
            raise DataError(path, n, "not a decision record (expected 'request_id' and 'text_sha256')")
        text = obj.get("text")
        if text is not None and not isinstance(text, str):
            raise DataError(path, n, f"'text' must be a string, got {type(text).__name__}")
        conv = obj.get("conversation_id")
        turn = obj.get("turn")
        yield {"text": text or "", "conversation": conv if isinstance(conv, str) and conv else None,
               "turn": turn if isinstance(turn, int) and not isinstance(turn, bool) else None, "line": n}
