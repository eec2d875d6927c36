"""Reading the gateway's decision log (``decisions-YYYY-MM-DD.jsonl``) as one more transcript format.

Each line is one routed request (see :mod:`workbench.serve.records`); its
``text`` is the routed user turn, already scrubbed unless the gateway ran
with ``--log-text full``. A line without ``text`` (``--log-text none``) gives
an empty turn, which the import's filters count and drop. ``workbench import``
reads these files with ``--format decisions`` (or ``auto``), so logged traffic
enters the labelling loop. Today's file may be read while the gateway appends
to it, so every reader here reads complete lines only (:func:`decision_records`).
"""
from __future__ import annotations

from pathlib import Path

from .. import config as _config
from ..errors import DataError
from ..io import read_jsonl

__all__ = ["decision_records", "read_decision_log", "is_decision_record", "logged_decisions"]


def is_decision_record(obj) -> bool:
    """Whether a JSON object looks like a decision-log line."""
    return isinstance(obj, dict) and "request_id" in obj and "text_sha256" in obj


def decision_records(path):
    """Yield ``(line_number, record)`` for each complete line of a decision-log file, which may still be written.

    A last line without its newline is a record the gateway is appending; the next read gets it whole.

    Raises
    ------
    DataError
        A complete line that is not JSON, or not a decision record.
    """
    for n, obj in read_jsonl(path, live=True):
        if not is_decision_record(obj):
            raise DataError(path, n, "not a decision record (expected 'request_id' and 'text_sha256')")
        yield n, obj


def _turn(path, n, obj):
    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        raise DataError(path, n, f"'text' must be a string, got {type(text).__name__}")
    conv = obj.get("conversation_id")
    turn = obj.get("turn")
    return {"text": text or "", "conversation": conv if isinstance(conv, str) and conv else None,
            "turn": turn if isinstance(turn, int) and not isinstance(turn, bool) else None, "line": n}


def read_decision_log(path):
    """User turns of a decision-log file: ``text``, ``conversation``, ``turn``, ``line`` per complete record.

    Raises
    ------
    DataError
        A line that is not a decision record, or whose ``text`` is not a string.
    """
    for n, obj in decision_records(path):
        yield _turn(path, n, obj)


def logged_decisions(folder):
    """The routed decisions of a decision-log folder (``decisions-*.jsonl``), for replaying them through two pools.

    Returns
    -------
    list of dict, one per routed request (passthroughs decided nothing and are left out): ``text`` (as
    :func:`read_decision_log` reads it), ``tokens`` (prompt + completion), ``cost`` and ``upstream_tier``.

    Raises
    ------
    DataError
        The folder holds no decision-log file, or a line is not a decision record.
    """
    files = sorted(Path(folder).glob(_config.DECISIONS_GLOB)) if Path(folder).is_dir() else []
    if not files:  # feedback-*.jsonl lines rate decisions; they are not decisions
        raise DataError(folder, None, f"no decision-log files ({_config.DECISIONS_GLOB}) in this folder")
    records = []
    for f in files:
        for n, obj in decision_records(f):  # one pass: a live file read twice can gain a line in between
            text = _turn(f, n, obj)["text"]
            if obj.get("routed") is False:  # a passthrough: the pool decided nothing
                continue
            tokens = sum(v for v in (obj.get("prompt_tokens"), obj.get("completion_tokens"))
                         if isinstance(v, (int, float)) and not isinstance(v, bool))
            cost = obj.get("cost")
            records.append({"text": text, "tokens": tokens, "upstream_tier": obj.get("upstream_tier"),
                            "cost": cost if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None})
    return records
