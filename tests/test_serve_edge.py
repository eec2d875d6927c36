"""The running service at its edge (issue 21): real uvicorn on 127.0.0.1 with the real default model.

One client sends invisible, surrogate, huge-integer and NaN texts while 16 send normal ones: no 5xx, every bad
request a 4xx, every good one a 200. Also ``--pool-sha256``. Bounded: a fixed number of requests, a timeout each.
"""
import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.test_serve import TEXTS, Server

pytestmark = pytest.mark.serve

BAD_BODIES = [b'{"text": "\\u200b"}', b'{"text": "\\u200b\\u200d \\u3164"}', b'{"text": "\\ud800"}',
              b'{"messages": [{"id": "\\udfff", "text": "hi"}]}', b'{"messages": [{"id": ' + b"9" * 5000 + b', "text": "hi"}]}',
              b'{"text": NaN}', b'{"messages": [{"id": NaN, "text": "hi"}]}', b'{"messages": [{"text": "hi"}, {"text": "\\u2800"}]}',
              b'{"turns": [{"text": "\\u200b"}]}']


@pytest.fixture(scope="module")
def server(small_npz, tmp_path_factory):
    pool = tmp_path_factory.mktemp("edge") / "pool.npz"
    pool.write_bytes(small_npz.read_bytes())
    with Server(pool, "--pool-sha256", hashlib.sha256(pool.read_bytes()).hexdigest()) as s:
        yield s


def test_one_client_sending_bad_texts_never_fails_sixteen_normal_clients(server):
    stop, bad_statuses = threading.Event(), []

    def bad_client():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and len(bad_statuses) < 400:
            body = BAD_BODIES[len(bad_statuses) % len(BAD_BODIES)]
            path = "/route/conversation" if b"turns" in body else "/route"
            bad_statuses.append(server.request("POST", path, body, timeout=60)[0])

    def good_client(i):
        return [server.request("POST", "/route", json.dumps({"messages": [{"id": j, "text": f"{TEXTS[(i + j) % 5]} {j}"}
                                                                          for j in range(3)]}).encode(), timeout=60)
                for _ in range(6)]

    with ThreadPoolExecutor(17) as ex:
        bad = ex.submit(bad_client)
        good = [r for rs in ex.map(good_client, range(16)) for r in rs]
        stop.set()
        bad.result()
    assert len(good) == 96 and all(status == 200 for status, _ in good), {s for s, _ in good}
    assert all(len(json.loads(text)["decisions"]) == 3 for _, text in good)
    assert bad_statuses and all(400 <= s < 500 for s in bad_statuses), sorted(set(bad_statuses))
    assert server.metric('workbench_requests_total{path="/route",status="500"}') == 0


def test_healthz_names_the_pinned_pool_by_hash_only(server):
    health = server.health()
    assert "pool" not in health and len(health["pool_sha256"]) == 64


def test_a_pool_that_is_not_the_pinned_one_is_refused_before_serving(small_npz, tmp_path):
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT
    from tests.test_serve import free_port

    res = subprocess.run([sys.executable, "-m", "workbench", "serve", "--pool", str(small_npz), "--pool-sha256",
                          "0" * 64, "--port", str(free_port())], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "is not the pinned" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_a_request_head_past_the_cap_is_refused_and_the_server_keeps_serving(server):
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        answer = b""
        try:
            sock.sendall(b"POST /route HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200_000 + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the server closed the connection first: refused too
            pass
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    # refused by the transport (h11's header cap), before any application code: not the app's JSON "empty body"
    assert answer == b"" or (answer.split(b" ")[1] == b"400" and b"Invalid HTTP request" in answer), answer[:200]
    assert server.post({"text": "hello"})[0] == 200


def test_a_request_past_the_character_budget_is_413(server):
    status, body = server.post({"messages": [{"text": "x" * 15_000}] * 5})
    assert status == 413 and "the limit is 64000" in body["error"]


def test_a_body_that_is_not_declared_json_is_415(server):
    status, text = server.request("POST", "/route", b'{"text": "hi"}', headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in json.loads(text)["error"]
