"""Reading the gateway's decision log (``decisions-YYYY-MM-DD.jsonl``) as one more transcript format.

Each line is one routed request (see :mod:`workbench.serve.records`); its
``text`` is the routed user turn, already scrubbed unless the gateway ran
with ``--log-text full``. A line without ``text`` (``--log-text none``) gives
an empty turn, which the import's filters count and drop. ``workbench import``
reads these files with ``--format decisions`` (or ``auto``), so logged traffic
enters the labelling loop.
"""
from __future__ import annotations

from pathlib import Path

from .. import config as _config
from ..errors import DataError
from ..io import read_jsonl

__all__ = ["read_decision_log", "is_decision_record", "logged_decisions"]


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
        texts = {t["line"]: t["text"] for t in read_decision_log(f)}
        for n, obj in read_jsonl(f):
            if obj.get("routed") is False:  # a passthrough: the pool decided nothing
                continue
            tokens = sum(v for v in (obj.get("prompt_tokens"), obj.get("completion_tokens"))
                         if isinstance(v, (int, float)) and not isinstance(v, bool))
            cost = obj.get("cost")
            records.append({"text": texts[n], "tokens": tokens, "upstream_tier": obj.get("upstream_tier"),
                            "cost": cost if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None})
    return records
