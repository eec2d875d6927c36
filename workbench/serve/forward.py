"""Forwarding one chat request to an upstream with ``httpx``: retries, bounds, and the reasons a try fails.

Each tier has its own ``httpx.AsyncClient`` (connection pool and timeouts),
built with ``follow_redirects=False`` and ``trust_env=False``: the key goes
to the tier's own ``base_url`` only, never to a ``Location`` an answer
names, nor through a proxy picked up from the environment. A try fails with
an :class:`UpstreamFailure` whose ``reason`` is what the fallback metric
and the decision record show: ``connect``, ``timeout``, ``closed`` (the
upstream dropped the connection before its first chunk), ``429``, ``5xx``,
``redirect``, ``too_large`` or ``invalid`` (a 200 that is not JSON).
Connection errors, 429 and 5xx are retried ``retries`` times with a short
backoff (honouring ``Retry-After`` up to a second); a timeout is not
retried (the chain is quicker). A 4xx other than 429 is the client's own bad
request: it comes back as an :class:`Answer` and is never retried elsewhere.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

from ..errors import require

log = logging.getLogger(__name__)

__all__ = ["Forwarder", "Answer", "UpstreamFailure", "failure_reason", "usage_of"]

_RETRY_CAP_S = 1.0


class UpstreamFailure(Exception):
    """A try that did not get an answer; ``reason`` is a short token (never the upstream's text or key)."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}{': ' + detail if detail else ''}")
        self.reason = reason


@dataclass
class Answer:
    """What an upstream sent: a whole body, or a stream with its first chunk already read."""

    status: int
    content_type: str
    body: bytes = b""
    response: object = None          # httpx.Response of a stream, open until the relay closes it
    first_chunk: bytes = b""
    chunks: object = None            # the rest of a stream: the async iterator the first chunk came from
    started: float = field(default_factory=time.perf_counter)

    @property
    def streaming(self):
        return self.response is not None


def usage_of(payload):
    """``(prompt_tokens, completion_tokens)`` of a chat-completions JSON object (``None`` when absent)."""
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return None, None
    def count(key):
        v = usage.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None
    return count("prompt_tokens"), count("completion_tokens")


def failure_reason(error):
    """The failure label of an exception raised while talking to an upstream.

    Any exception counts, not only httpx's: under a connection that dies mid-request the transport stack raises
    its own (anyio's ``AttributeError`` on a socket already closed), and that is still the upstream failing, to be
    retried and fallen back from, never a 500 of the gateway.
    """
    httpx = require("httpx", purpose="the gateway")
    if isinstance(error, (httpx.TimeoutException, TimeoutError)):
        return "timeout"
    if isinstance(error, httpx.ConnectError):
        return "connect"
    if not isinstance(error, httpx.HTTPError):
        log.warning("upstream transport raised %s: %s", type(error).__name__, error)
    return "closed"  # RemoteProtocolError, ReadError, ...: the connection went away


def _retry_after(response, attempt):
    try:
        wait = float(response.headers.get("retry-after", ""))
    except ValueError:
        wait = 0.05 * 2 ** attempt
    return min(max(wait, 0.0), _RETRY_CAP_S)


class Forwarder:
    """One connection pool per tier; :meth:`send` makes one forwarded request (its retries included)."""

    def __init__(self, upstreams, *, max_connections=256):
        httpx = require("httpx", purpose="the gateway")
        self.clients = {
            tier: httpx.AsyncClient(timeout=httpx.Timeout(u.timeout_s), follow_redirects=False, trust_env=False,
                                    limits=httpx.Limits(max_connections=max_connections,
                                                        max_keepalive_connections=64))
            for tier, u in upstreams.tiers.items()}

    async def aclose(self):
        for client in self.clients.values():
            await client.aclose()

    async def send(self, upstream, body, *, stream, request_id):
        """Forward ``body`` (a dict, ``model`` already set) to ``upstream``; an :class:`Answer` or UpstreamFailure."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"content-type": "application/json", "accept-encoding": "identity", "x-request-id": request_id}
        if upstream.api_key:
            headers["authorization"] = f"Bearer {upstream.api_key}"
        for attempt in range(upstream.retries + 1):
            try:
                return await self._try(upstream, data, headers, stream)
            except _Retryable as e:
                if attempt == upstream.retries:
                    raise UpstreamFailure(e.reason) from None
                await asyncio.sleep(e.wait if e.wait is not None else 0.05 * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _try(self, upstream, data, headers, stream):
        client = self.clients[upstream.tier]
        request = client.build_request("POST", upstream.base_url + "/chat/completions", content=data, headers=headers)
        started = time.perf_counter()
        try:
            response = await client.send(request, stream=True)
        except Exception as e:  # noqa: BLE001 - whatever the transport raises is the upstream failing (failure_reason)
            reason = failure_reason(e)
            if reason == "timeout":
                raise UpstreamFailure("timeout") from None
            raise _Retryable(reason) from None
        try:
            return await self._answer(upstream, response, stream, started)
        except BaseException:
            await response.aclose()
            raise

    async def _answer(self, upstream, response, stream, started):
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable("429" if status == 429 else "5xx", _retry_after(response, 0))
        if 300 <= status < 400:
            raise UpstreamFailure("redirect", f"status {status}")
        content_type = response.headers.get("content-type", "application/json")
        if stream and status < 300:
            chunks = response.aiter_raw()
            first = await self._first_chunk(chunks, upstream)
            return Answer(status, content_type, response=response, first_chunk=first, chunks=chunks, started=started)
        body = await self._read_body(response, upstream)
        await response.aclose()
        if status < 300:
            try:
                json.loads(body)
            except ValueError:
                raise UpstreamFailure("invalid") from None
        return Answer(status, content_type, body=body, started=started)

    async def _first_chunk(self, chunks, upstream):
        try:
            async with asyncio.timeout(upstream.timeout_s):
                async for chunk in chunks:
                    if chunk:
                        return chunk
        except Exception as e:  # noqa: BLE001 - see failure_reason
            raise UpstreamFailure(failure_reason(e)) from None
        raise UpstreamFailure("closed", "the stream ended before its first chunk")

    async def _read_body(self, response, upstream):
        body = bytearray()
        try:
            async with asyncio.timeout(upstream.timeout_s):  # a deadline for the whole body, not per read
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > upstream.max_response_bytes:
                        raise UpstreamFailure("too_large", f"over {upstream.max_response_bytes} bytes")
        except UpstreamFailure:
            raise
        except Exception as e:  # noqa: BLE001 - see failure_reason
            raise UpstreamFailure(failure_reason(e)) from None
        return bytes(body)


class _Retryable(Exception):
    def __init__(self, reason, wait=None):
        super().__init__(reason)
        self.reason, self.wait = reason, wait
