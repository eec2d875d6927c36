"""``POST /v1/feedback``: a client's rating of an answer the gateway served, appended to the decision-log folder.

Body: ``{"request_id": str, "rating": "up" | "down", "tier_wanted"?: a tier or null}``.
Accepted feedback (202) becomes one line of ``DIR/feedback-YYYY-MM-DD.jsonl``
(UTC), exactly ``{"time", "request_id", "rating", "tier_wanted"}``, written
off the request path by the same kind of writer as the decision records
(:class:`.decision_log.DecisionLog`). The traffic section and ``workbench
queue`` read these files.

Which ids are known: the gateway keeps the ids it answered in a bounded
recent set (:class:`RecentIds`, ``FEEDBACK_RECENT_IDS``), which also covers
the moment before the writer has put a record on disk; an id it does not hold
(answered by another worker process, or before a restart) is looked up in the
decision-log files of the last ``FEEDBACK_MAX_AGE_DAYS`` days, a bounded scan
in a thread. An id in neither is answered 404, a bad body 400/413/415/422
(:mod:`.payloads`), each with a one-line JSON error.
"""
from __future__ import annotations

import asyncio
import json
import mmap
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from .. import config as _config
from .decision_log import log_file_name
from .payloads import RequestError, json_body, read_body
from .records import iso_time

__all__ = ["Feedback", "RecentIds", "parse_feedback", "logged_request", "feedback", "RATINGS", "FIELDS", "REQUEST_ID"]

RATINGS = ("up", "down")
FIELDS = ("time", "request_id", "rating", "tier_wanted")
#: The request ids the gateway gives or accepts from a client's ``x-request-id`` (no quote: see :func:`logged_request`).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True)
class Feedback:
    request_id: str
    rating: str
    tier_wanted: object  # a tier name or None

    def line(self, seconds):
        """The feedback-log object, in :data:`FIELDS` order."""
        return {"time": iso_time(seconds), "request_id": self.request_id, "rating": self.rating,
                "tier_wanted": self.tier_wanted}


class RecentIds:
    """The last ``size`` request ids the gateway answered (insertion order; the oldest falls out)."""

    def __init__(self, size=_config.FEEDBACK_RECENT_IDS):
        self.size = size
        self._ids = OrderedDict()

    def add(self, request_id):
        self._ids[request_id] = None
        self._ids.move_to_end(request_id)
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)

    def __contains__(self, request_id):
        return request_id in self._ids

    def __len__(self):
        return len(self._ids)


def _kind(v):
    return "null" if v is None else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(v), "number")


def parse_feedback(body: bytes, *, tiers) -> Feedback:
    """Parse and check a feedback body against the served ``tiers``.

    Raises
    ------
    RequestError
        400 (not strict JSON) or 422 (wrong shape, unknown field, bad value), with a one-line message.
    """
    obj = json_body(body, "'request_id' and 'rating'")
    if not isinstance(obj, dict):
        raise RequestError(422, f"expected a JSON object with 'request_id' and 'rating'; got {_kind(obj)}")
    unknown = sorted(set(obj) - {"request_id", "rating", "tier_wanted"})
    if unknown:
        raise RequestError(422, f"unknown field(s) {unknown!r:.200}; known: ['rating', 'request_id', 'tier_wanted']")
    rid = obj.get("request_id")
    if not isinstance(rid, str) or not REQUEST_ID.fullmatch(rid):
        got = f"{rid!r:.80}" if isinstance(rid, str) else _kind(rid)
        raise RequestError(422, f"'request_id' must be the x-request-id of an answer (1-64 of A-Z a-z 0-9 . _ : -); "
                                f"got {got}")
    rating = obj.get("rating")
    if rating not in RATINGS:
        got = f"{rating!r:.40}" if isinstance(rating, str) else _kind(rating)
        raise RequestError(422, f"'rating' must be 'up' or 'down'; got {got}")
    wanted = obj.get("tier_wanted")
    if wanted is not None and (not isinstance(wanted, str) or wanted not in tiers):
        got = f"{wanted!r:.40}" if isinstance(wanted, str) else _kind(wanted)
        raise RequestError(422, f"'tier_wanted' must be one of {list(tiers)} or null; got {got}")
    return Feedback(rid, rating, wanted)


def logged_request(folder, request_id, *, days=_config.FEEDBACK_MAX_AGE_DAYS, now=None) -> bool:
    """Whether a decision record of ``request_id`` is in the decision-log files of the last ``days`` days (UTC).

    The writer prints ``"request_id":"<id>"`` with no blanks and ids hold no quote or backslash, so a byte search
    of each file (memory-mapped) finds exactly the records of that id.
    """
    needle = b'"request_id":' + json.dumps(request_id).encode("ascii")
    now = time.time() if now is None else now
    for day in range(days):
        path = os.path.join(str(folder), log_file_name(now - day * 86400))
        try:
            with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if data.find(needle) >= 0:
                    return True
        except (OSError, ValueError):  # missing, unreadable or empty file
            continue
    return False


def _json(obj, status):
    from starlette.responses import Response

    return Response(json.dumps(obj, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    media_type="application/json")


def _error(status, message):
    return _json({"error": " ".join(str(message).split()), "status": status}, status)


async def feedback(request):
    """``POST /v1/feedback``: authenticate, check the body and the id, queue the line; 202 with the request id."""
    gw = request.app.state.gateway
    if gw is None:
        return _error(404, "no upstreams configured (start workbench serve with --upstreams)")
    if gw.clients and gw.clients.client(request.headers.get("authorization")) is None:
        resp = _error(401, "missing or wrong bearer token")
        resp.headers["www-authenticate"] = "Bearer"
        return resp
    if gw.feedback_log is None:
        return _error(404, "feedback is kept in the decision-log folder: start workbench serve with --decision-log DIR")
    try:
        fb = parse_feedback(await read_body(request, _config.FEEDBACK_MAX_BODY_BYTES), tiers=gw.tiers)
        if fb.request_id not in gw.served and not await asyncio.to_thread(logged_request, gw.log_folder,
                                                                           fb.request_id):
            raise RequestError(404, f"unknown request_id {fb.request_id!r}: not answered by this gateway in the last "
                                    f"{_config.FEEDBACK_MAX_AGE_DAYS} days")
    except RequestError as e:
        return _error(e.status, e.message)
    gw.feedback_log.write(fb.line(time.time()))
    gw.metrics.feedback.labels(fb.rating).inc()
    return _json({"status": "accepted", "request_id": fb.request_id}, 202)
