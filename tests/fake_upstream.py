"""OpenAI-compatible upstream servers for the gateway tests: real uvicorn on 127.0.0.1, in a thread of the test process.

``POST /v1/chat/completions`` answers as the named model (non-streamed JSON,
or server-sent events ending with a ``usage`` chunk and ``[DONE]``). What it
does next is set by ``mode``:

- ``ok``: answer at once (streams send their chunks ``chunk_delay`` apart);
- ``slow``: wait ``delay`` seconds before answering (for timeouts);
- ``500``, ``429``, ``400``: that status with a JSON error;
- ``redirect``: a 307 to another address (the gateway must not follow it);
- ``close``: start a 200 and drop the connection before any byte of the body;
- ``midstream``: stream one chunk, then drop the connection.

Every request is recorded (its body and Authorization header); ``cancelled``
counts streams the client closed before their end.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Dropped(Exception):
    """Raised inside a response to make uvicorn drop the connection."""


class FakeUpstream:
    """One upstream: ``start()``, ``stop()``, ``mode``, ``requests``, ``cancelled``."""

    def __init__(self, name, model, *, port=None):
        self.name, self.model, self.port = name, model, port or free_port()
        self.mode, self.delay, self.chunk_delay, self.chunks = "ok", 5.0, 0.0, 3
        self.requests, self.cancelled, self.completed = [], 0, 0
        self._lock = threading.Lock()
        self.server = self.thread = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self):
        self.mode, self.delay, self.chunk_delay, self.chunks = "ok", 5.0, 0.0, 3
        with self._lock:
            self.requests.clear()
            self.cancelled = self.completed = 0

    def _chunk(self, content, **extra):
        obj = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": int(time.time()), "model": self.model,
               "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}], **extra}
        return f"data: {json.dumps(obj)}\n\n".encode()

    async def _events(self, drop_after=None):
        done = False
        try:
            for i in range(self.chunks):
                if drop_after is not None and i >= drop_after:
                    raise _Dropped()
                yield self._chunk(f"{self.name}-{i} ")
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
            final = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 0, "model": self.model,
                     "choices": [], "usage": USAGE}
            yield f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode()
            done = True
        finally:
            with self._lock:
                if done:
                    self.completed += 1
                elif drop_after is None:
                    self.cancelled += 1

    async def _partial(self, nbytes):
        if nbytes:
            yield b'{"id": "chatcmpl-x", '[:nbytes * 10]
        raise _Dropped()

    async def _chat(self, request):
        body = await request.json()
        with self._lock:
            self.requests.append({"body": body, "authorization": request.headers.get("authorization"),
                                  "headers": dict(request.headers)})
        mode = self.mode
        if mode == "slow":
            await asyncio.sleep(self.delay)
        if mode in ("500", "429", "400"):
            return JSONResponse({"error": {"message": f"{self.name} says {mode}"}}, status_code=int(mode),
                                headers={"retry-after": "0"} if mode == "429" else None)
        if mode == "redirect":
            return Response(status_code=307, headers={"location": "http://127.0.0.1:9/v1/chat/completions"})
        drop = {"close": 0, "midstream": 1}.get(mode)
        if body.get("stream"):
            return StreamingResponse(self._events(drop), media_type="text/event-stream")
        if drop is not None:
            return StreamingResponse(self._partial(drop), media_type="application/json")
        with self._lock:
            self.completed += 1
        return JSONResponse({"id": "chatcmpl-x", "object": "chat.completion", "created": int(time.time()),
                             "model": self.model, "usage": USAGE,
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": f"answer from {self.name}"}}]})

    def start(self):
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"upstream-{self.name}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError(f"upstream {self.name} did not start")
            time.sleep(0.02)
        return self

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)
