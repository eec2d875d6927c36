"""The HTTP service: ``POST /route``, ``POST /route/conversation``, ``GET /healthz``, ``GET /metrics`` (Starlette),
and with upstreams the gateway's ``POST /v1/chat/completions`` and ``GET /v1/models`` (see :mod:`.gateway`).

A route table (:data:`ROUTES`) of plain async endpoints that read the shared
state from ``request.app.state``: ``settings`` (a :class:`ServiceSettings`)
and ``metrics`` are set when the app is created, ``pool``, ``worker`` and
``watcher`` in the lifespan. A new endpoint is one function and one
``Route`` line.

Every error is a one-line JSON object ``{"error": ..., "status": ...}``:
400/413/422 for a bad request (see :mod:`.payloads`), 404/405 for a wrong
path or method, 500 only if routing itself fails; the service keeps serving.
The pool is loaded and the encoder warmed up before the server listens.
"""
from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from .. import config as _config
from ..errors import require
from .batching import RouterWorker
from .gateway import Gateway, chat_completions, feedback, models
from .metrics import Metrics
from .pools import PoolWatcher, load_served_pool
from .payloads import RequestError, parse_conversation_request, parse_route_request, read_body

# the serve extra: without it, importing the service fails with the install hint
Route = require("starlette.routing", purpose="workbench serve").Route

log = logging.getLogger(__name__)

__all__ = ["create_app", "ServiceSettings", "ROUTES"]


@dataclass(frozen=True)
class ServiceSettings:
    """What :func:`create_app` was asked for; read by the lifespan and the endpoints (``request.app.state.settings``)."""

    pool_path: object
    max_batch: int = _config.SERVE_MAX_BATCH
    window_ms: float = _config.SERVE_BATCH_WINDOW_MS
    max_messages: int = _config.SERVE_MAX_MESSAGES
    max_chars: int = _config.SERVE_MAX_TEXT_CHARS
    max_body: int = _config.SERVE_MAX_BODY_BYTES
    poll_s: float = _config.SERVE_RELOAD_POLL_S
    threads: int | None = None
    allowed_backends: list | None = None
    max_total_chars: int = _config.SERVE_MAX_REQUEST_CHARS
    pool_sha256: str | None = None  # the only pool content this service may serve (at startup and every reload)
    gateway: dict | None = None    # the gateway's settings (upstreams file and the rest); None: no gateway


def _json(obj, status=200):
    from starlette.responses import Response

    # strict JSON (no NaN); ASCII escapes, so no string can fail to encode on the way out
    return Response(json.dumps(obj, allow_nan=False, separators=(",", ":")), status_code=status,
                    media_type="application/json")


def _error(status, message):
    return _json({"error": " ".join(str(message).split()), "status": status}, status)


# ---------------------------------------------------------------- lifespan: the pool, the encoder worker, the watcher

def _current_pool(app_state):
    return app_state.pool


def _swap_pool(app_state, new):
    app_state.worker.swap(new)
    app_state.pool = new


@asynccontextmanager
async def lifespan(app):
    """Load the pool (unless given), start the micro-batching worker and the file watcher; stop them on shutdown."""
    state, settings = app.state, app.state.settings
    state.pool = state.loaded or await asyncio.to_thread(
        load_served_pool, settings.pool_path, threads=settings.threads, allowed_backends=settings.allowed_backends,
        sha256=settings.pool_sha256)
    state.worker = RouterWorker(state.pool, max_batch=settings.max_batch, window_s=settings.window_ms / 1000,
                                on_batch=state.metrics.batch).start()
    state.watcher = PoolWatcher(settings.pool_path, partial(_current_pool, state), partial(_swap_pool, state),
                                on_result=state.metrics.reload, poll_s=settings.poll_s, threads=settings.threads,
                                allowed_backends=settings.allowed_backends, sha256=settings.pool_sha256).start()
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: state.watcher.trigger())
    log.info("serving %s: %d rows, backend %s, sha256 %s", settings.pool_path, state.pool.rows, state.pool.backend,
             state.pool.sha256[:12])
    state.gateway = None
    if settings.gateway is not None:
        state.gateway = Gateway(**settings.gateway, tiers=state.pool.router.tiers, metrics=state.metrics,
                                max_chars=settings.max_chars)
        await state.gateway.start()
    try:
        yield
    finally:
        state.watcher.stop()
        await asyncio.to_thread(state.worker.stop)  # in-flight batches finish first
        if state.gateway is not None:
            await state.gateway.stop()  # drains the decision log


# ---------------------------------------------------------------- endpoints

async def route(request):
    """``POST /route``: one text or a batch of messages, through the micro-batching worker."""
    state, settings = request.app.state, request.app.state.settings
    try:
        req = parse_route_request(await read_body(request, settings.max_body), max_messages=settings.max_messages,
                                  max_chars=settings.max_chars, max_total_chars=settings.max_total_chars)
    except RequestError as e:
        return _error(e.status, e.message)
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    state.worker.submit(req.texts, loop, future)
    try:
        decisions = await future
    except Exception:
        return _error(500, "routing failed (see the service log)")
    out = [d.to_dict(neighbors=req.neighbors) for d in decisions]
    if req.single:
        return _json(out[0])
    return _json({"decisions": [{"id": i, **d} for i, d in zip(req.ids, out)]})


async def route_conversation(request):
    """``POST /route/conversation``: the turns of one conversation, routed together."""
    state, settings = request.app.state, request.app.state.settings
    try:
        req = parse_conversation_request(await read_body(request, settings.max_body),
                                         max_turns=settings.max_messages, max_chars=settings.max_chars,
                                         max_total_chars=settings.max_total_chars)
    except RequestError as e:
        return _error(e.status, e.message)
    router = state.pool.router
    try:  # a conversation's turns depend on each other: routed together, beside the micro-batches
        decisions = await asyncio.to_thread(router.route_conversation, req.texts)
    except Exception:
        log.exception("routing a conversation failed")
        return _error(500, "routing failed (see the service log)")
    state.metrics.count(decisions)
    return _json({"conversation_id": req.conversation_id,
                  "decisions": [{"id": i, **d.to_dict(neighbors=req.neighbors)} for i, d in zip(req.ids, decisions)]})


async def healthz(request):
    """``GET /healthz``: the pool served, its hash and backend, the uptime."""
    pool, metrics = request.app.state.pool, request.app.state.metrics
    if not request.app.state.worker.alive:
        return _error(503, "the router thread has stopped (see the service log)")
    return _json({"status": "ok", "pool_sha256": pool.sha256, "backend": pool.backend,
                  "model_id": pool.router.metadata["model_id"], "rows": pool.rows,
                  "ann": pool.router.index is not None, "uptime_s": round(time.time() - metrics.started, 3),
                  "pool_loaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pool.loaded))})


async def metrics_text(request):
    """``GET /metrics``: Prometheus text exposition (prometheus-client)."""
    from prometheus_client import CONTENT_TYPE_LATEST
    from starlette.responses import Response

    pool, metrics = request.app.state.pool, request.app.state.metrics
    return Response(metrics.render(rows=pool.rows, backend=pool.backend), media_type=CONTENT_TYPE_LATEST)


async def http_error(request, exc):
    return _error(exc.status_code, exc.detail)


#: The status a request is counted under when its client went away first (nginx's "client closed request").
CLIENT_GONE = 499


async def client_gone(request, exc):
    """A client that disconnected before its answer: counted as a disconnect, one log line, no traceback."""
    from starlette.responses import Response

    request.app.state.metrics.disconnects.labels(_metric_path(request.url.path)).inc()
    log.info("client disconnected before the answer on %s", request.url.path)
    return Response(status_code=CLIENT_GONE)  # nobody reads it; the middleware counts it under 499


async def internal_error(request, exc):
    log.exception("unhandled error on %s", request.url.path)
    return _error(500, "internal error (see the service log)")


#: The route table: a new endpoint is one async function above and one line here.
ROUTES = [Route("/route", route, methods=["POST"]),
          Route("/route/conversation", route_conversation, methods=["POST"]),
          Route("/healthz", healthz, methods=["GET"]),
          Route("/metrics", metrics_text, methods=["GET"]),
          Route("/v1/chat/completions", chat_completions, methods=["POST"]),
          Route("/v1/models", models, methods=["GET"]),
          Route("/v1/feedback", feedback, methods=["POST"])]

_PATHS = tuple(r.path for r in ROUTES)


def _metric_path(path):
    """A metric label from a fixed set: a route's path, or "other" (a client cannot mint label values)."""
    return path if path in _PATHS else "other"


class _Timing:
    """ASGI middleware: every HTTP response counted by path and status, with its latency."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def record(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.metrics.request(_metric_path(scope["path"]), status[0], time.perf_counter() - start)


def create_app(pool_path, *, loaded=None, **settings):
    """The ASGI app serving ``pool_path``.

    Parameters
    ----------
    pool_path : path
        pool.npz; replacing it atomically (or SIGHUP) reloads it in the background.
    loaded : ServedPool, optional
        ``pool_path`` already loaded (by :func:`~.pools.load_served_pool`); default: loaded at startup.
    **settings
        The other fields of :class:`ServiceSettings`: ``max_batch`` and ``window_ms`` (micro-batching: messages per
        encoder call, and how long a batch waits for more under concurrent traffic), ``max_messages``,
        ``max_chars`` and ``max_body`` (request limits, 413 past them), ``poll_s`` (seconds between two looks at
        the pool file), ``threads`` (encoder threads; default all cores) and ``allowed_backends`` (backend
        specs, shell patterns, a pool may name; default the bundled backends), ``max_total_chars`` (characters
        per request, all its texts together: one request cannot hold the encoder for long), ``pool_sha256`` (the
        only pool content this service may serve) and ``gateway`` (the settings of
        :class:`~.gateway.Gateway`; without them the ``/v1`` endpoints answer 404).
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    app = Starlette(routes=list(ROUTES), lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, ClientDisconnect: client_gone,
                                        Exception: internal_error})
    from dataclasses import asdict

    from .limits import check_settings

    app.state.settings = ServiceSettings(pool_path, **settings)
    check_settings(**asdict(app.state.settings))  # bounded once, from the CLI or from Python
    app.state.metrics = Metrics()
    app.state.loaded = loaded
    return _Timing(app, app.state.metrics)
