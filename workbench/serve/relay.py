"""Relaying an upstream's server-sent events to the client, chunk by chunk, as they arrive.

Nothing is buffered: each chunk the upstream sends is passed on before the
next is read. The relay watches the ``data:`` lines for a ``usage`` object
(the last chunk of a stream, when the upstream sends one) for the tokens and
the cost. A stream that fails after its first chunk cannot fall back: it
ends with an error event (``data: {"error": {...}}``), which is counted
(``workbench_stream_errors_total``) and logged. A client that goes away
cancels the relay, which closes the upstream response, so the upstream
stops generating.
"""
from __future__ import annotations

import asyncio
import json
import logging

from .forward import usage_of

log = logging.getLogger(__name__)

__all__ = ["relay_stream", "UsageScanner"]

_MAX_LINE = 1 << 20


class UsageScanner:
    """Finds the last ``usage`` in a stream of SSE bytes, across chunk boundaries."""

    def __init__(self):
        self._partial = b""
        self.usage = (None, None)

    def feed(self, chunk):
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > _MAX_LINE:  # a line this long is no usage chunk: stop keeping it
            self._partial = b""
        for line in lines:
            if line.startswith(b"data:") and b'"usage"' in line:
                try:
                    found = usage_of(json.loads(line[5:]))
                except ValueError:
                    continue
                if found != (None, None):
                    self.usage = found


def _error_event(tier, reason):
    payload = {"error": {"message": f"the upstream of tier {tier!r} failed mid-stream ({reason})",
                         "type": "upstream_error", "code": reason}}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def relay_stream(gw, answer, upstream, rec, finish):
    """Yield ``answer``'s chunks (its first one already read); ``finish`` closes the record when it ends."""
    import anyio

    from .forward import UpstreamFailure, failure_reason

    scanner, size, status = UsageScanner(), len(answer.first_chunk), 200
    scanner.feed(answer.first_chunk)
    try:
        yield answer.first_chunk
        async for chunk in answer.chunks:
            size += len(chunk)
            if size > upstream.max_response_bytes:
                raise UpstreamFailure("too_large")
            scanner.feed(chunk)
            yield chunk
    except Exception as e:  # noqa: BLE001 - any transport error after the first chunk ends the stream loudly
        reason = e.reason if isinstance(e, UpstreamFailure) else failure_reason(e)
        status = "stream_error"
        gw.metrics.stream_errors.labels(upstream.tier, reason).inc()
        log.warning("request %s: the stream of upstream %s failed after its first chunk (%s)", rec["request_id"],
                    upstream.tier, reason)
        yield _error_event(upstream.tier, reason)
    except (asyncio.CancelledError, GeneratorExit):
        status = "client_disconnected"
        raise
    finally:
        with anyio.CancelScope(shield=True):  # closing must run even in a cancelled task
            await answer.response.aclose()
        if status == "client_disconnected":
            log.info("request %s: the client went away; the upstream request to %s was closed", rec["request_id"],
                     upstream.tier)
        finish(gw, rec, status, upstream, answer, scanner.usage)
