"""The OpenAI-compatible gateway: ``POST /v1/chat/completions`` and ``GET /v1/models``.

A request whose ``model`` is the alias (``auto``) is routed on its user turns
with the shipped conversation policy and forwarded, ``model`` replaced, to
its tier's upstream; a request naming an upstream's model passes through
unrouted. Failed tries go down the tier's fallback chain (or get a 503 in
``fail`` mode), loudly: a metric, a log line, the ``x-workbench-fallback``
header and the decision record. ``stream: true`` is relayed chunk by chunk;
a client that goes away closes the upstream request. Every response carries
the routing headers (:data:`HEADERS`) and ``x-request-id``.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid

from .. import config as _config
from ..core.conversation import ConversationPolicy, lifted, more_confident, with_previous
from .chat import parse_chat_request, read_body
from .clients import ClientKeys, load_client_keys
from .decision_log import DecisionLog
from .feedback import REQUEST_ID, RecentIds, feedback
from .forward import Forwarder, UpstreamFailure, usage_of
from .payloads import RequestError
from .records import log_record_preparer, new_record
from .relay import relay_stream
from .upstreams import load_upstreams

log = logging.getLogger(__name__)

__all__ = ["Gateway", "chat_completions", "models", "feedback", "HEADERS", "LOG_TEXT"]

HEADERS = ("x-workbench-tier", "x-workbench-category", "x-workbench-confidence", "x-workbench-abstain",
           "x-workbench-fallback", "x-workbench-pool-sha256", "x-request-id")
LOG_TEXT = ("scrubbed", "full", "none")
_REQUEST_ID = REQUEST_ID


class Gateway:
    """The gateway's settings and live state (``app.state.gateway``), started and stopped in the app's lifespan.

    Parameters
    ----------
    upstreams : path
        The upstreams file (see :mod:`.upstreams`), validated against ``tiers``.
    tiers : sequence of str
        The served pool's tiers, cheapest first.
    metrics : Metrics
    client_keys : path, optional
    client_key_env : str, optional
        Client authentication (see :mod:`.clients`); neither: anonymous.
    decision_log : path, optional
        Folder of the decision log and of the feedback log (:mod:`.feedback`); ``None``: neither.
    log_text : {"scrubbed", "full", "none"}
    max_chars, max_body
        Routing reads at most ``max_chars`` of a turn; a body over ``max_body`` bytes gets a 413.
    """

    def __init__(self, upstreams, *, tiers, metrics, client_keys=None, client_key_env=None, decision_log=None,
                 log_text="scrubbed", max_chars=_config.SERVE_MAX_TEXT_CHARS,
                 max_body=_config.GATEWAY_MAX_BODY_BYTES):
        if log_text not in LOG_TEXT:
            raise ValueError(f"log_text must be one of {LOG_TEXT}; got {log_text!r}")
        self.upstreams = load_upstreams(upstreams, tiers=tiers)
        self.clients = load_client_keys(client_keys, env=client_key_env) if (client_keys or client_key_env) \
            else ClientKeys([])
        self.metrics, self.tiers = metrics, list(tiers)
        self.baseline = self.upstreams.tiers[self.tiers[-1]]
        self.policy = ConversationPolicy()
        self.max_chars, self.max_body = max_chars, max_body
        self.log_folder, self.log_text = decision_log, log_text
        self.forwarder = self.decision_log = self.feedback_log = None
        self.served = RecentIds()  # ids answered here, for POST /v1/feedback

    async def start(self):
        self.forwarder = Forwarder(self.upstreams)
        if self.log_folder is not None:
            self.decision_log = DecisionLog(self.log_folder, prepare=log_record_preparer(self.log_text),
                                            on_written=self.metrics.log_records.inc,
                                            on_error=self.metrics.log_errors.inc).start()
            self.feedback_log = DecisionLog(self.log_folder, prefix="feedback", on_error=self.metrics.log_errors.inc
                                            ).start()

    async def stop(self):
        if self.forwarder is not None:
            await self.forwarder.aclose()
        for writer in (self.decision_log, self.feedback_log):
            if writer is not None:
                await asyncio.to_thread(writer.close)

    def write(self, record):
        self.served.add(record["request_id"])
        if self.decision_log is not None:
            self.decision_log.write(record)


def _json(obj, status=200, headers=None):
    import json

    from starlette.responses import Response

    return Response(json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")), status_code=status,
                    media_type="application/json", headers=headers)


def _headers(rec):
    conf = rec.get("confidence")
    return {"x-workbench-tier": rec.get("tier") or "", "x-workbench-category": rec.get("category") or "",
            "x-workbench-confidence": "" if conf is None else f"{conf:.4f}",
            "x-workbench-abstain": "true" if rec.get("abstain") else "false",
            "x-workbench-fallback": rec.get("fallback_header", ""),
            "x-workbench-pool-sha256": rec.get("pool_sha256") or "", "x-request-id": rec["request_id"]}


def _error(rec, status, message):
    return _json({"error": " ".join(str(message).split()), "status": status}, status, _headers(rec))


async def _submit(worker, texts):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    worker.submit(texts, loop, fut)
    return await fut


async def route_turns(state, texts, policy):
    """The decision for the last user turn under ``policy`` (a context rule), and the SHA-256 of the pool that made it.

    Every rule routes a first (or only) user turn alone, and the rules that read one earlier turn (``alone``,
    ``previous``, ``confident``, ``lift``) decide the last turn from the last two turns only, so those go through
    the micro-batcher; every other conversation (``sticky``, ``inherit``, ``detector``, or a wider window) is routed
    with the router's own conversation API, so the gateway never re-implements a rule.
    """
    if len(texts) > 1 and (policy.name not in _TWO_TURN_RULES or policy.turns != 1):
        pool = state.pool
        decisions = await asyncio.to_thread(pool.router.route_conversation, texts, context=policy)
        return decisions[-1], pool.sha256
    joined = with_previous(texts[-2:])[-1] if len(texts) > 1 else None
    batch = [texts[-1]] if joined is None or policy.name == "alone" else \
        [joined] if policy.name == "previous" else [texts[-1], joined]
    decisions = await _submit(state.worker, batch)
    sha = decisions.pool.sha256
    if len(decisions) == 1:
        return decisions[0], sha
    alone, previous = [decisions[0]] * 2, [decisions[0], decisions[1]]
    pick = more_confident(alone, previous) if policy.name == "confident" else \
        lifted(alone, previous, tiers=decisions.pool.router.tiers)
    return pick[1], sha


#: Rules whose decision on the last turn depends on the last two turns only (with ``turns=1``).
_TWO_TURN_RULES = ("alone", "previous", "confident", "lift")


async def _decide(gw, state, req, rec):
    """Fill ``rec`` with the routing decision (or the passthrough); the tier to forward to."""
    rec["pool_sha256"] = state.pool.sha256
    if req.model != gw.upstreams.alias:
        upstream = gw.upstreams.by_model(req.model)
        if upstream is None:
            raise RequestError(404, f"model {req.model!r} is not served here (models: "
                                    f"{', '.join(gw.upstreams.models)})")
        rec.update(routed=False, tier=upstream.tier)
        return upstream.tier
    started = time.perf_counter()
    try:
        if not req.texts:
            raise LookupError("no user text to route")
        decision, rec["pool_sha256"] = await route_turns(state, [t[:gw.max_chars] for t in req.texts], gw.policy)
    except Exception as e:  # routing must not fail the request: the abstain tier answers, loudly
        log.warning("request %s: routing failed (%s); sent to the abstain tier %s", rec["request_id"],
                    type(e).__name__, gw.upstreams.abstain_tier)
        gw.metrics.fallback("router", gw.upstreams.abstain_tier, "routing_error")
        rec.update(tier=gw.upstreams.abstain_tier, abstain=True, fallback_reason="routing_error",
                   fallback_header=f"router->{gw.upstreams.abstain_tier}:routing_error")
        gw.metrics.gw_abstains.labels(gw.upstreams.abstain_tier).inc()
        return rec["tier"]
    finally:
        rec["routing_ms"] = round((time.perf_counter() - started) * 1000, 3)
        gw.metrics.routing.observe(rec["routing_ms"] / 1000)
    tier = gw.upstreams.abstain_tier if decision.abstain else decision.tier
    rec.update(category=decision.category, tier=tier, decided_tier=decision.tier, confidence=decision.confidence,
               margin=decision.margin, abstain=bool(decision.abstain), neighbors=list(decision.neighbors[:3]))
    gw.metrics.gw_decisions.labels(tier, decision.category).inc()
    if decision.abstain:
        gw.metrics.gw_abstains.labels(tier).inc()
    return tier


async def _forward(gw, tier, req, rec):
    """Try ``tier`` and its fallback chain; the :class:`Answer` and the upstream that gave it, or ``(None, None)``."""
    chain = [tier] + (list(gw.upstreams.tiers[tier].fallback) if gw.upstreams.on_upstream_failure == "fallback" else [])
    base = [rec["fallback_reason"]] if rec.get("fallback_reason") else []
    reasons, marks = [], [rec["fallback_header"]] if rec.get("fallback_header") else []
    for i, name in enumerate(chain):
        upstream = gw.upstreams.tiers[name]
        body = dict(req.body, model=upstream.model)
        try:
            answer = await gw.forwarder.send(upstream, body, stream=req.stream, request_id=rec["request_id"])
        except UpstreamFailure as e:
            reasons.append(e.reason)
            if i + 1 < len(chain):
                gw.metrics.fallback(name, chain[i + 1], e.reason)
                marks.append(f"{name}->{chain[i + 1]}:{e.reason}")
                log.warning("request %s: upstream %s failed (%s); falling back to %s", rec["request_id"], name,
                            e.reason, chain[i + 1])
            else:
                log.error("request %s: upstream %s failed (%s); no fallback left", rec["request_id"], name, e.reason)
            continue
        finally:
            rec.update(fallback_header=", ".join(marks), fallback_reason=",".join(base + reasons) or None)
        rec.update(upstream_tier=name, upstream_model=upstream.model)
        return answer, upstream
    rec["upstream_failure"] = reasons[-1] if reasons else None
    return None, None


def _finish(gw, rec, status, upstream=None, answer=None, usage=(None, None)):
    """Close the record: tokens, cost, timings, metrics; then hand it to the decision log."""
    rec["status"] = status
    if answer is not None:
        rec["upstream_ms"] = round((time.perf_counter() - answer.started) * 1000, 3)
    if upstream is not None and status == 200:
        rec["prompt_tokens"], rec["completion_tokens"] = usage
        rec["cost"] = round(upstream.cost(*usage), 8) if usage != (None, None) else None
        gw.metrics.answered(upstream, prompt_tokens=usage[0], completion_tokens=usage[1],
                            seconds=rec["upstream_ms"] / 1000, baseline=gw.baseline)
    gw.metrics.gw_requests.labels(rec["client"], "routed" if rec["routed"] else "passthrough", str(status)).inc()
    gw.write(rec)


async def chat_completions(request):
    """``POST /v1/chat/completions``: authenticate, route, forward (with fallbacks), answer, record."""
    gw, state = request.app.state.gateway, request.app.state
    if gw is None:
        return _json({"error": "no upstreams configured (start workbench serve with --upstreams)", "status": 404}, 404)
    given = request.headers.get("x-request-id", "")
    rec = new_record(given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex)
    client = gw.clients.client(request.headers.get("authorization")) if gw.clients else "anonymous"
    if client is None:
        resp = _error(rec, 401, "missing or wrong bearer token")
        resp.headers["www-authenticate"] = "Bearer"
        return resp
    rec["client"] = client
    try:
        req = parse_chat_request(await read_body(request, gw.max_body),
                                 conversation_header=request.headers.get("x-conversation-id"))
        rec.update(conversation_id=req.conversation_id, turn=len(req.texts), stream=req.stream,
                   text=req.texts[-1] if req.texts else "")
        tier = await _decide(gw, state, req, rec)
    except RequestError as e:
        return _error(rec, e.status, e.message)
    answer, upstream = await _forward(gw, tier, req, rec)
    if answer is None:
        gw.metrics.failures.labels(tier, rec["upstream_failure"] or "none").inc()
        _finish(gw, rec, 503)
        return _error(rec, 503, f"the upstream of tier {tier!r} failed ({rec['upstream_failure']})"
                                + ("" if gw.upstreams.on_upstream_failure == "fail" else " and so did its fallbacks"))
    if answer.streaming:
        from starlette.responses import StreamingResponse

        return StreamingResponse(relay_stream(gw, answer, upstream, rec, _finish), status_code=answer.status,
                                 headers=_headers(rec), media_type=answer.content_type)
    from starlette.responses import Response

    usage = (None, None)
    if answer.status < 300:
        import json

        usage = usage_of(json.loads(answer.body))
    _finish(gw, rec, answer.status, upstream, answer, usage)
    return Response(answer.body, status_code=answer.status, headers=_headers(rec), media_type=answer.content_type)


async def models(request):
    """``GET /v1/models``: the alias and every upstream model."""
    gw = request.app.state.gateway
    if gw is None:
        return _json({"error": "no upstreams configured (start workbench serve with --upstreams)", "status": 404}, 404)
    if gw.clients and gw.clients.client(request.headers.get("authorization")) is None:
        return _json({"error": "missing or wrong bearer token", "status": 401}, 401, {"www-authenticate": "Bearer"})
    return _json({"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "workbench"}
                                             for m in gw.upstreams.models]})
