"""A real HTTP server on localhost that speaks the chat-completions protocol, for the labelling tests.

``POST /v1/chat/completions`` answers ``{"choices": [{"message": {"content": "{\\"category\\": ...}"}}]}``
with the category ``answer(text)`` gives. Faults are injected per message text
through ``script[text]``: a list of actions consumed one per request for that
text (``("status", 503)``, ``("status", 429, "0.3")`` with a Retry-After,
``("reply", "raw content")``, ``("body", b"not json")``, ``("sleep", 0.5)``, ``("redirect", 302, url)``,
``("trickle", seconds_per_byte)``: a valid answer one byte at a time, ``("huge", n_bytes, declared)``: a body of
``n_bytes`` with or without its Content-Length). Every request is recorded (method, text, time, Authorization
header); ``bytes_sent`` counts what the server managed to write of a trickled or huge body.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CATEGORIES = ("casual", "simple_lookup", "analysis", "research_lookup", "creative", "coding", "reasoning")


_MARKED = re.compile(r"\A(=====MESSAGE-[0-9a-f]{12}=====)\n(.*)\n\1\Z", re.S)


def unwrap(content):
    """The message of a labelling request (between the client's marker lines), or the content as it is."""
    m = _MARKED.match(content)
    return m.group(2) if m else content


def hash_category(text):
    """A deterministic stand-in for the categorizer's judgement."""
    return CATEGORIES[hashlib.sha256(text.encode()).digest()[0] % len(CATEGORIES)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body: bytes, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
            pass

    def _stream(self, body: bytes, *, declared=True, per_byte=0.0, chunk=65536):
        """Send a 200 with ``body`` slowly or in chunks until done or the client hangs up; count what was sent."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if declared:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        step = 1 if per_byte else chunk
        try:
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
                with self.server.lock:
                    self.server.bytes_sent += step
                if per_byte:
                    time.sleep(per_byte)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):  # only a client that followed a redirect comes here: record it and answer like a label
        with self.server.lock:
            self.server.requests.append({"text": None, "t": time.monotonic(), "method": "GET", "path": self.path,
                                         "auth": self.headers.get("Authorization")})
        content = json.dumps({"category": "coding"})
        self._send(200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode())

    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send(404, b'{"error": "not found"}')
        text = unwrap(body["messages"][-1]["content"])
        with srv.lock:
            srv.requests.append({"text": text, "t": time.monotonic(), "auth": self.headers.get("Authorization"),
                                 "model": body.get("model"), "system": body["messages"][0]["content"],
                                 "method": "POST", "path": self.path})
            srv.inflight += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
            actions = srv.script.get(text)
            action = actions.pop(0) if actions else ("ok",)
        try:
            if srv.key is not None and self.headers.get("Authorization") != f"Bearer {srv.key}":
                return self._send(401, b'{"error": {"message": "invalid api key"}}')
            if srv.delay:
                time.sleep(srv.delay)
            kind = action[0]
            if kind == "redirect":
                return self._send(action[1], b"", [("Location", action[2])])
            if kind in ("trickle", "huge"):
                content = json.dumps({"category": srv.answer(text)})
                reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                if kind == "trickle":
                    return self._stream(reply + b" " * 400, per_byte=action[1])
                return self._stream(reply + b" " * (action[1] - len(reply)), declared=action[2])
            if kind == "status":
                headers = [("Retry-After", action[2])] if len(action) > 2 else []
                return self._send(action[1], b'{"error": {"message": "injected"}}', headers)
            if kind == "body":
                return self._send(200, action[1])
            if kind == "sleep":
                time.sleep(action[1])
            content = action[1] if kind == "reply" else json.dumps({"category": srv.answer(text)})
            reply = {"id": "chatcmpl-test", "object": "chat.completion", "model": body.get("model"),
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                  "finish_reason": "stop"}]}
            return self._send(200, json.dumps(reply).encode())
        finally:
            with srv.lock:
                srv.inflight -= 1


class FakeLLM:
    """Start with ``with FakeLLM() as llm:``; ``llm.base_url`` ends in ``/v1``."""

    def __init__(self, *, answer=hash_category, key=None, delay=0.0):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.lock = threading.Lock()
        self.httpd.requests, self.httpd.script, self.httpd.bytes_sent = [], {}, 0
        self.httpd.inflight = self.httpd.max_inflight = 0
        self.httpd.answer, self.httpd.key, self.httpd.delay = answer, key, delay
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def requests(self):
        with self.httpd.lock:
            return list(self.httpd.requests)

    @property
    def script(self):
        return self.httpd.script

    @property
    def max_inflight(self):
        return self.httpd.max_inflight

    @property
    def bytes_sent(self):
        with self.httpd.lock:
            return self.httpd.bytes_sent

    def set_delay(self, seconds):
        self.httpd.delay = seconds

    def count(self, text):
        return sum(r["text"] == text for r in self.requests)
