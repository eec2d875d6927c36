"""The HTTP service: ``POST /route``, ``POST /route/conversation``, ``GET /healthz``, ``GET /metrics`` (Starlette).

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

from .. import config as _config
from ..errors import require
from .batching import RouterWorker
from .metrics import Metrics
from .pools import PoolWatcher, load_served_pool
from .payloads import RequestError, parse_conversation_request, parse_route_request

log = logging.getLogger(__name__)

__all__ = ["create_app"]


def _json(obj, status=200):
    from starlette.responses import Response

    # strict JSON (no NaN); ASCII escapes, so no string can fail to encode on the way out
    return Response(json.dumps(obj, allow_nan=False, separators=(",", ":")), status_code=status,
                    media_type="application/json")


def _error(status, message):
    return _json({"error": " ".join(str(message).split()), "status": status}, status)


async def _read_body(request, limit):
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise RequestError(415, f"Content-Type must be application/json; got {kind[:40] or 'none'!r}")
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > limit:
        raise RequestError(413, f"body of {size} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"body larger than the limit of {limit} bytes")
    return bytes(body)


_PATHS = ("/route", "/route/conversation", "/healthz", "/metrics")


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
            path = scope["path"] if scope["path"] in _PATHS else "other"
            self.metrics.request(path, status[0], time.perf_counter() - start)


def create_app(pool_path, *, max_batch=_config.SERVE_MAX_BATCH, window_ms=_config.SERVE_BATCH_WINDOW_MS,
               max_messages=_config.SERVE_MAX_MESSAGES, max_chars=_config.SERVE_MAX_TEXT_CHARS,
               max_body=_config.SERVE_MAX_BODY_BYTES, poll_s=_config.SERVE_RELOAD_POLL_S, threads=None, allowed_backends=None,
               loaded=None, max_total_chars=_config.SERVE_MAX_REQUEST_CHARS, pool_sha256=None):
    """The ASGI app serving ``pool_path``.

    Parameters
    ----------
    pool_path : path
        pool.npz; replacing it atomically (or SIGHUP) reloads it in the background.
    max_batch, window_ms
        Micro-batching: messages per encoder call, and how long a batch waits for more under concurrent traffic.
    max_messages, max_chars, max_body
        Request limits (413 past them).
    poll_s : float
        Seconds between two looks at the pool file.
    threads : int, optional
        Encoder threads (default: all cores).
    allowed_backends : list of str, optional
        Backend specs (shell patterns) a pool may name; default: the bundled backends.
    loaded : ServedPool, optional
        ``pool_path`` already loaded (by :func:`~.pools.load_served_pool`); default: loaded at startup.
    max_total_chars : int
        Characters per request, all its texts together (413 past it): one request cannot hold the encoder for long.
    pool_sha256 : str, optional
        The only pool content this service may serve (at startup and on every reload).
    """
    starlette = require("starlette.applications", purpose="workbench serve")
    from .limits import check_settings

    check_settings(max_batch=max_batch, window_ms=window_ms, max_messages=max_messages, max_chars=max_chars,
                   max_body=max_body, poll_s=poll_s, threads=threads, max_total_chars=max_total_chars)
    from starlette.routing import Route

    metrics = Metrics()
    state = {}

    @asynccontextmanager
    async def lifespan(app):
        pool = loaded or await asyncio.to_thread(load_served_pool, pool_path, threads=threads,
                                                     allowed_backends=allowed_backends, sha256=pool_sha256)
        worker = RouterWorker(pool, max_batch=max_batch, window_s=window_ms / 1000, on_batch=metrics.batch).start()

        def swapped(new):
            worker.swap(new)
            state["pool"] = new

        watcher = PoolWatcher(pool_path, lambda: state["pool"], swapped, on_result=metrics.reload, poll_s=poll_s,
                              threads=threads, allowed_backends=allowed_backends, sha256=pool_sha256).start()
        state.update(pool=pool, worker=worker, watcher=watcher)
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: watcher.trigger())
        log.info("serving %s: %d rows, backend %s, sha256 %s", pool_path, pool.rows, pool.backend, pool.sha256[:12])
        try:
            yield
        finally:
            watcher.stop()
            await asyncio.to_thread(worker.stop)  # in-flight batches finish first

    async def route(request):
        try:
            req = parse_route_request(await _read_body(request, max_body), max_messages=max_messages,
                                      max_chars=max_chars, max_total_chars=max_total_chars)
        except RequestError as e:
            return _error(e.status, e.message)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        state["worker"].submit(req.texts, loop, fut)
        try:
            decisions = await fut
        except Exception:
            return _error(500, "routing failed (see the service log)")
        out = [d.to_dict(neighbors=req.neighbors) for d in decisions]
        if req.single:
            return _json(out[0])
        return _json({"decisions": [{"id": i, **d} for i, d in zip(req.ids, out)]})

    async def route_conversation(request):
        try:
            req = parse_conversation_request(await _read_body(request, max_body), max_turns=max_messages,
                                             max_chars=max_chars, max_total_chars=max_total_chars)
        except RequestError as e:
            return _error(e.status, e.message)
        router = state["pool"].router
        try:  # a conversation's turns depend on each other: routed together, beside the micro-batches
            decisions = await asyncio.to_thread(router.route_conversation, req.texts)
        except Exception:
            log.exception("routing a conversation failed")
            return _error(500, "routing failed (see the service log)")
        metrics.count(decisions)
        return _json({"conversation_id": req.conversation_id,
                      "decisions": [{"id": i, **d.to_dict(neighbors=req.neighbors)} for i, d in zip(req.ids, decisions)]})

    async def healthz(request):
        pool = state["pool"]
        if not state["worker"].alive:
            return _error(503, "the router thread has stopped (see the service log)")
        return _json({"status": "ok", "pool_sha256": pool.sha256, "backend": pool.backend,
                      "model_id": pool.router.metadata["model_id"], "rows": pool.rows,
                      "ann": pool.router.index is not None, "uptime_s": round(time.time() - metrics.started, 3),
                      "pool_loaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pool.loaded))})

    async def metrics_text(request):
        from starlette.responses import PlainTextResponse

        pool = state["pool"]
        return PlainTextResponse(metrics.render(rows=pool.rows, backend=pool.backend),
                                 media_type="text/plain; version=0.0.4")

    async def http_error(request, exc):
        return _error(exc.status_code, exc.detail)

    async def internal_error(request, exc):
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, "internal error (see the service log)")

    from starlette.exceptions import HTTPException

    app = starlette.Starlette(
        routes=[Route("/route", route, methods=["POST"]),
                Route("/route/conversation", route_conversation, methods=["POST"]),
                Route("/healthz", healthz, methods=["GET"]),
                Route("/metrics", metrics_text, methods=["GET"])],
        lifespan=lifespan, exception_handlers={HTTPException: http_error, Exception: internal_error})
    app.state.service = state
    return _Timing(app, metrics)
