"""``workbench serve`` as a real uvicorn server on 127.0.0.1: endpoints, error codes, micro-batching, hot reload, SIGTERM.

Marked ``serve`` (slow): each server process loads the real default model.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.serve

TEXTS = ["how do I reverse a string in python", "¿cuál es la capital de Perú?", "晚安，明天见",
         "prove that the square root of 2 is irrational", "write me a haiku about autumn rain"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m workbench serve`` in a subprocess, stopped (SIGTERM) on exit."""

    def __init__(self, pool, *extra):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", "-v", "serve", "--pool", str(pool), "--port", str(self.port), *extra],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("server did not start")

    def request(self, method, path, body=None, headers=None, timeout=300):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if headers is None
                         else headers)
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def get(self, path):
        return self.request("GET", path)

    def post(self, body, **kw):
        status, text = self.request("POST", "/route", body, **kw)
        return status, json.loads(text)

    def health(self):
        return json.loads(self.get("/healthz")[1])

    def metric(self, name):
        text = self.get("/metrics")[1]
        return sum(float(v) for v in re.findall(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def server(small_npz, tmp_path_factory):
    pool = tmp_path_factory.mktemp("served") / "pool.npz"
    pool.write_bytes(small_npz.read_bytes())
    with Server(pool) as s:
        s.pool = pool
        yield s


def test_route_gives_the_decisions_of_the_router(server, small_npz, e5):
    from workbench.core.router import Router

    router = Router.load(small_npz, embedder=e5)
    expected = [d.to_dict(neighbors=True) for d in router.route_batch(TEXTS)]
    status, one = server.post({"text": TEXTS[0]})
    assert status == 200 and one == {k: v for k, v in expected[0].items() if k != "neighbors"}
    status, many = server.post({"messages": [{"id": i, "text": t} for i, t in enumerate(TEXTS)], "neighbors": True})
    assert status == 200 and [d.pop("id") for d in many["decisions"]] == list(range(len(TEXTS)))
    assert many["decisions"] == expected
    health = server.health()
    assert health["rows"] == len(router.artifact.labels) and health["backend"] == "e5-small"
    assert len(health["pool_sha256"]) == 64 and health["uptime_s"] > 0
    metrics = server.get("/metrics")[1]
    assert "workbench_requests_total{path=\"/route\",status=\"200\"}" in metrics
    assert "# TYPE workbench_request_duration_seconds histogram" in metrics and "workbench_decisions_total{tier=" in metrics


def test_a_conversation_gets_the_decisions_of_route_conversation(server, small_npz, e5):
    from workbench.core.router import Router

    turns = [{"id": "t1", "text": "write a python function that merges two sorted lists"},
             {"id": "t2", "text": "now make it faster"}, {"id": "t3", "text": "thanks, have a nice day"}]
    expected = Router.load(small_npz, embedder=e5).route_conversation(turns)
    status, text = server.request("POST", "/route/conversation", {"conversation_id": "c1", "turns": turns})
    body = json.loads(text)
    assert status == 200 and body["conversation_id"] == "c1"
    assert [d["id"] for d in body["decisions"]] == ["t1", "t2", "t3"]
    assert [d["tier"] for d in body["decisions"]] == [d.tier for d in expected]
    status, text = server.request("POST", "/route/conversation", {"turns": "hi"})
    assert status == 422 and "\n" not in text and "'turns' must be a non-empty array" in json.loads(text)["error"]
    assert 'workbench_requests_total{path="/route/conversation",status="200"}' in server.get("/metrics")[1]


def test_a_pool_naming_a_backend_outside_the_allow_list_is_refused_before_serving(small_npz, tmp_path):
    import zipfile

    from workbench.core.artifact_schema import content_digest

    with np.load(small_npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("metadata")))
    meta["backend"] = "st:someone/model"
    meta["sha256"] = content_digest(arrays, meta)
    arrays["metadata"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "st.npz", **arrays)
    assert zipfile.is_zipfile(tmp_path / "st.npz")
    res = subprocess.run([sys.executable, "-m", "workbench", "serve", "--pool", str(tmp_path / "st.npz"),
                          "--port", str(free_port())], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "st:someone/model" in res.stderr and len(res.stderr.strip().splitlines()) == 1


BAD = [
    (b"{bad json", 400, "invalid JSON"),
    (b"", 400, "empty body"),
    (b"\xff\xfe{}", 400, "not UTF-8"),
    ([1, 2], 422, "expected a JSON object"),
    ({}, 422, "exactly one of"),
    ({"text": 5}, 422, "'text' must be a string; got number"),
    ({"text": "   "}, 422, "'text' is empty"),
    ({"text": "x" * 16_001}, 413, "16001 characters; the limit is 16000"),
    ({"messages": "hi"}, 422, "'messages' must be a non-empty array"),
    ({"messages": [{"id": 1}]}, 422, "messages[0].text must be a string; got null"),
    ({"messages": [{"text": "hi"}] * 257}, 413, "257 messages; the limit is 256"),
    ({"text": "hi", "neighbours": True}, 422, "unknown field(s) ['neighbours']"),
]


@pytest.mark.parametrize("body,status,message", BAD)
def test_a_bad_request_gets_a_one_line_json_error_and_the_server_keeps_serving(server, body, status, message):
    got, text = server.request("POST", "/route", body if isinstance(body, bytes) else json.dumps(body).encode())
    assert got == status and "\n" not in text.strip()
    err = json.loads(text)
    assert err["status"] == status and message in err["error"]
    assert server.post({"text": "hello"})[0] == 200


def test_oversized_bodies_wrong_paths_and_methods(server):
    status, text = server.request("POST", "/route", b"x" * ((1 << 20) + 1))
    assert status == 413 and "limit" in json.loads(text)["error"]
    assert server.request("GET", "/route")[0] == 405
    assert json.loads(server.request("GET", "/nowhere")[1]) == {"error": "Not Found", "status": 404}


def test_concurrent_requests_are_micro_batched(server):
    before_batches = server.metric("workbench_batch_messages_count")
    with ThreadPoolExecutor(16) as ex:
        results = list(ex.map(lambda t: server.post({"text": t}), [f"{t} ({i})" for i in range(4) for t in TEXTS]))
    assert all(status == 200 for status, _ in results)
    batches = server.metric("workbench_batch_messages_count") - before_batches
    assert batches < len(results)  # several requests shared an encoder call


def test_hot_reload_swaps_valid_pools_refuses_a_corrupt_one_and_never_fails_a_request(server, small_npz, other_npz):
    failures, stop = [], threading.Event()

    def traffic():
        while not stop.is_set():
            status, _ = server.post({"text": TEXTS[int(time.time() * 10) % len(TEXTS)]})
            if status != 200:
                failures.append(status)

    def replace(src_bytes):
        tmp = server.pool.with_suffix(".tmp")
        tmp.write_bytes(src_bytes)
        os.replace(tmp, server.pool)

    def wait_for(pred, what):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.1)
        raise AssertionError(what)

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        old = server.health()
        replace(other_npz.read_bytes())
        wait_for(lambda: server.health()["rows"] != old["rows"], "the new pool was not swapped in")
        new = server.health()
        refused = server.metric('workbench_pool_reloads_total{result="refused"}')
        data = bytearray(small_npz.read_bytes())
        data[len(data) // 2:len(data) // 2 + 64] = b"\0" * 64
        replace(bytes(data))
        wait_for(lambda: server.metric('workbench_pool_reloads_total{result="refused"}') > refused,
                 "the corrupt pool was not refused")
        assert server.health()["pool_sha256"] == new["pool_sha256"]  # the old one keeps serving
        replace(small_npz.read_bytes())
        wait_for(lambda: server.health()["pool_sha256"] == old["pool_sha256"], "the pool was not restored")
        ok = server.metric('workbench_pool_reloads_total{result="ok"}')
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: server.metric('workbench_pool_reloads_total{result="ok"}') > ok, "SIGHUP did not reload")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []


def test_sigterm_lets_an_in_flight_request_finish(small_npz, tmp_path):
    with Server(small_npz) as s:
        texts = [f"{t} number {i}" for i in range(40) for t in TEXTS]
        result = {}
        t = threading.Thread(target=lambda: result.update(r=s.post({"messages": [{"text": x} for x in texts]})))
        t.start()
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        t.join(timeout=300)
        status, body = result["r"]
        assert status == 200 and len(body["decisions"]) == len(texts)
        out, _ = s.proc.communicate(timeout=60)
        assert s.proc.returncode is not None
        # the start line says where it listens and what it serves (issue 22: serve printed nothing at start)
        assert re.search(rf"^workbench serve: serving \d+ rows .* on http://127\.0\.0\.1:{s.port} ", out, re.M), out
