"""The gateway's decision record: built during a request, turned into one decision-log line off the request path.

Fields of a line: ``time`` (UTC, ISO 8601), ``request_id``, ``client``,
``conversation_id``, ``turn`` (user turns so far), ``text`` (the routed
turn: scrubbed by :func:`workbench.traffic.scrub.scrub_text` by default,
as sent with ``full``, absent with ``none``), ``text_sha256`` (of the text as
sent), ``routed`` (false for a passthrough), ``category``, ``tier`` (after the
abstain rule), ``decided_tier`` (the pool's own), ``confidence``, ``margin``,
``abstain``, ``neighbors`` (the 3 nearest pool ids), ``pool_sha256``,
``upstream_tier`` and ``upstream_model`` (after fallbacks),
``fallback_reason``, ``routing_ms``, ``upstream_ms``, ``prompt_tokens``,
``completion_tokens``, ``cost`` (dollars at the upstream's prices),
``stream`` and ``status`` (the HTTP status, or ``stream_error`` /
``client_disconnected``). Keys never enter a record: the gateway does not
put them there, and the record holds no request headers.
"""
from __future__ import annotations

import hashlib
import math
import time

__all__ = ["new_record", "log_record_preparer", "iso_time", "FIELDS"]

FIELDS = ("time", "request_id", "client", "conversation_id", "turn", "text", "text_sha256", "routed", "category",
          "tier", "decided_tier", "confidence", "margin", "abstain", "neighbors", "pool_sha256", "upstream_tier",
          "upstream_model", "fallback_reason", "routing_ms", "upstream_ms", "prompt_tokens", "completion_tokens",
          "cost", "stream", "status")


def new_record(request_id):
    """An empty record for a request that has just arrived."""
    rec = dict.fromkeys(FIELDS)
    rec.update(time=time.time(), request_id=request_id, client="anonymous", routed=True, abstain=False, stream=False,
               neighbors=[], text="")
    return rec


def iso_time(seconds) -> str:
    """``seconds`` (Unix) as the log files write a time: ISO 8601, UTC, milliseconds (``2026-12-06T03:04:05.678Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"


def _number(value, digits):
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def log_record_preparer(log_text):
    """The function the log writer applies to each record: scrub (or drop) the text, stamp the time, keep FIELDS."""
    def prepare(rec):
        text = rec.get("text") or ""
        out = {k: rec.get(k) for k in FIELDS}
        out["time"] = iso_time(rec["time"])
        out["text_sha256"] = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        if log_text == "scrubbed":
            from ..traffic.scrub import scrub_text

            out["text"] = scrub_text(text)[0]
        elif log_text == "none":
            del out["text"]
        out["confidence"], out["margin"] = _number(rec.get("confidence"), 4), _number(rec.get("margin"), 4)
        return out

    return prepare
