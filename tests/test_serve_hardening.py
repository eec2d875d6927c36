"""Issue 21 classes 1, 6, 9, 11 and the service's edge, without a model: the request parser, the micro-batcher, options.

Hypothesis generates raw request bodies (bytes and JSON texts: huge integers, ``NaN``/``Infinity``, lone
surrogates, BOMs, invisible texts), not just Python values; every body is routed or refused with 400/413/422.
"""
import asyncio
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from workbench.core.text import has_visible_text
from workbench.serve.batching import RouterWorker
from workbench.serve.payloads import RequestError, parse_conversation_request, parse_route_request

INVISIBLE = ["\u200b", " \u200b\u200d ", "\u3164", "\u2800", "\ufeff", "\u0301", "\t\n", "\x00"]
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def parse(raw, **kw):
    return parse_route_request(raw, max_messages=kw.get("max_messages", 8), max_chars=kw.get("max_chars", 100),
                               max_total_chars=kw.get("max_total_chars", 300))


@pytest.mark.parametrize("text", INVISIBLE)
def test_an_invisible_text_is_refused_with_422_alone_or_inside_messages(text):
    for body in ({"text": text}, {"messages": [{"text": "hello"}, {"text": text}]}):
        with pytest.raises(RequestError) as e:
            parse(json.dumps(body).encode())
        assert e.value.status == 422 and "no visible characters" in e.value.message


@pytest.mark.parametrize("raw,status,message", [
    (b'{"text": NaN}', 400, "NaN is not a JSON value"),
    (b'{"text": "hi", "neighbors": Infinity}', 400, "Infinity"),
    (b'{"messages": [{"id": 1e999, "text": "hi"}]}', 400, "out of range"),
    (b'{"messages": [{"id": ' + b"9" * 5000 + b', "text": "hi"}]}', 400, "invalid JSON"),
    (b'{"messages": [{"id": "\\ud800", "text": "hi"}]}', 400, "lone surrogate"),
    (b'{"text": "\\udfff hi"}', 400, "lone surrogate"),
    (b'{"messages": [{"text": "hi", "extra": 1}]}', 422, "unknown field(s) ['extra'] in messages[0]"),
    (json.dumps({"messages": [{"text": "x" * 90}] * 4}).encode(), 413, "360 characters in this request"),
])
def test_non_json_numbers_surrogates_unknown_fields_and_the_budget(raw, status, message):
    with pytest.raises(RequestError) as e:
        parse(raw)
    assert e.value.status == status and message in e.value.message and "\n" not in e.value.message


def test_a_utf8_bom_before_the_body_is_accepted():
    assert parse("\ufeff".encode() + b'{"text": "hi"}').texts == ["hi"]


def test_a_conversation_applies_the_same_rules():
    for raw in (b'{"turns": [{"text": "\\u200b"}]}', b'{"conversation_id": NaN, "turns": [{"text": "a"}]}',
                b'{"turns": [{"text": "a", "role": "user"}]}'):
        with pytest.raises(RequestError) as e:
            parse_conversation_request(raw, max_turns=4, max_chars=50)
        assert e.value.status in (400, 422)


_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(INVISIBLE + ["hi", "\ud800"])
            | st.text(max_size=6))
_JSON_TEXTS = st.recursive(_SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(["text", "messages", "id", "neighbors", "turns", "x"]), c, max_size=3), max_leaves=8).map(
    lambda v: json.dumps(v, allow_nan=True))  # NaN, Infinity and \ud800 escapes on the wire
_HUGE = st.integers(min_value=4000, max_value=6000).map(lambda n: '{"messages": [{"id": %s, "text": "a"}]}' % ("7" * n))
_RAW = (_JSON_TEXTS.map(str.encode) | _HUGE.map(str.encode) | st.binary(max_size=40)
        | _JSON_TEXTS.map(lambda t: "\ufeff".encode() + t.encode()))


@FUZZ
@given(_RAW)
def test_any_raw_body_is_routed_or_refused_and_what_is_routed_is_strict_json(raw):
    try:
        req = parse(raw)
    except RequestError as e:
        assert e.status in (400, 413, 422) and "\n" not in e.message
        return
    assert all(has_visible_text(t) for t in req.texts)
    json.dumps({"ids": req.ids, "texts": req.texts}, allow_nan=False).encode("utf-8")  # echoable as strict JSON


class _Decision:
    def __init__(self, text):
        self.text = text


class _Router:
    """Raises for any batch holding a text that starts with ``boom`` (whatever the exception), like a bad message."""

    def __init__(self, exc):
        self.exc, self.calls = exc, []

    def route_batch(self, texts):
        self.calls.append(list(texts))
        if any(t.startswith("boom") for t in texts):
            raise self.exc
        return [_Decision(t) for t in texts]


class _Pool:
    def __init__(self, router):
        self.router = router


@pytest.mark.parametrize("exc", [ValueError("bad"), ZeroDivisionError(), KeyError("k"), RuntimeError("x")])
def test_the_batcher_fails_only_the_request_that_holds_the_bad_message(exc):
    router = _Router(exc)
    worker = RouterWorker(_Pool(router), max_batch=64, window_s=0.05)
    texts = [["boom"], ["a", "b"], ["c"], ["boom 2", "d"], ["e"]]

    async def main():
        loop = asyncio.get_running_loop()
        worker._concurrent = True
        futs = [loop.create_future() for _ in texts]
        for t, f in zip(texts, futs):
            worker.submit(t, loop, f)
        worker.start()
        return await asyncio.gather(*futs, return_exceptions=True)

    results = asyncio.run(main())
    worker.stop()
    assert isinstance(results[0], type(exc)) and isinstance(results[3], type(exc))
    assert [[d.text for d in r] for r in (results[1], results[2], results[4])] == [["a", "b"], ["c"], ["e"]]
    assert worker.alive is False  # stopped on purpose


def test_the_batcher_thread_survives_anything_a_batch_raises():
    class Exploding:
        @property
        def router(self):
            raise MemoryError("the pool itself fails")

    worker = RouterWorker(Exploding(), max_batch=4, window_s=0.0).start()

    async def one():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        worker.submit(["hi"], loop, fut)
        return await asyncio.gather(fut, return_exceptions=True)

    assert isinstance(asyncio.run(one())[0], MemoryError)
    assert worker.alive
    worker.pool = _Pool(_Router(ValueError()))
    assert [d.text for d in asyncio.run(one())[0]] == ["hi"]
    worker.stop()


@pytest.mark.parametrize("option,value", [("--batch-window-ms", "inf"), ("--batch-window-ms", "nan"),
                                          ("--batch-window-ms", "5000"), ("--port", "99999"), ("--port", "0"),
                                          ("--max-batch", "100000"), ("--workers", "1000"), ("--threads", "0"),
                                          ("--pool-sha256", "abc")])
def test_every_serve_option_is_bounded(option, value, capsys):
    from workbench.cli import main

    with pytest.raises(SystemExit) as e:
        main(["serve", "--pool", "nowhere.npz", option, value])
    assert e.value.code == 2 and option in capsys.readouterr().err


@pytest.mark.parametrize("name,value", [("window_ms", math.inf), ("window_ms", -1), ("max_batch", 0),
                                        ("max_batch", 2.5), ("port", 99999), ("max_chars", True),
                                        ("poll_s", math.nan)])
def test_the_service_settings_are_checked_when_called_from_python(name, value):
    from workbench.errors import ConfigError
    from workbench.serve.limits import check_settings

    with pytest.raises(ConfigError, match=name):
        check_settings(**{name: value})


def test_allowed_backend_patterns_cannot_cross_a_slash():
    from workbench.core.embed import backend_matches

    assert backend_matches("st:intfloat/e5-small", "st:intfloat/*")
    assert not backend_matches("st:intfloat/../../tmp/evil", "st:intfloat/*")
    assert not backend_matches("st:intfloat/x/y", "st:intfloat/*")
    assert not backend_matches("st:/tmp/evil", "st:*")
    assert backend_matches("e5-small", "e5-*")


@pytest.fixture
def hash_app(tmp_path, taxonomy):
    """The real app over a small pool whose router embeds with a numpy stand-in (no model)."""
    import numpy as np

    from tests.helpers import HashEmbedder, synthetic_pool
    from workbench.core.artifact import load_pool_npz, write_pool_npz
    from workbench.core.knn import KNNConfig
    from workbench.core.router import Router
    from workbench.serve.app import create_app
    from workbench.serve.pools import ServedPool, _file_sha256

    x, labels, ids = synthetic_pool(np.random.default_rng(0), taxonomy, per_class=3, dim=8)
    path = tmp_path / "pool.npz"
    write_pool_npz(path, x, labels, ids, taxonomy=taxonomy, embedder_spec=HashEmbedder(8).spec, config=KNNConfig(k=3))
    served = ServedPool(Router(load_pool_npz(path), HashEmbedder(8)), str(path), _file_sha256(path), 0.0)
    return create_app(path, loaded=served)


def test_healthz_hides_the_pool_path_and_answers_503_when_the_router_thread_is_dead(hash_app):
    from starlette.testclient import TestClient

    with TestClient(hash_app) as client:
        health = client.get("/healthz")
        assert health.status_code == 200 and "pool" not in health.json() and len(health.json()["pool_sha256"]) == 64
        hash_app.app.state.worker.stop()
        dead = client.get("/healthz")
        assert dead.status_code == 503 and "router thread has stopped" in dead.json()["error"]


def test_route_requires_json_content_type_and_answers_strict_json(hash_app):
    from starlette.testclient import TestClient

    with TestClient(hash_app) as client:
        form = client.post("/route", content=b'{"text": "hi"}', headers={"Content-Type": "text/plain"})
        assert form.status_code == 415 and "application/json" in form.json()["error"]
        nan = client.post("/route", content=b'{"messages": [{"id": NaN, "text": "hi"}]}',
                          headers={"Content-Type": "application/json"})
        assert nan.status_code == 400 and "NaN is not a JSON value" in nan.json()["error"]
        ok = client.post("/route", content=b'{"messages": [{"id": 1.5, "text": "hi there"}]}',
                         headers={"Content-Type": "application/json; charset=utf-8"})
        assert ok.status_code == 200 and ok.json()["decisions"][0]["id"] == 1.5


def test_a_client_that_disconnects_mid_body_is_a_disconnect_not_a_500(hash_app, caplog):
    """Issue 21 class 13: counted under 499 and in the disconnect counter, one log line, no traceback."""
    import asyncio
    import logging

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/route", "raw_path": b"/route", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080)}
    messages = [{"type": "http.request", "body": b'{"text": "half a mess', "more_body": True}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        pass

    with caplog.at_level(logging.INFO, logger="workbench.serve"):
        asyncio.run(hash_app(scope, receive, send))
    registry = hash_app.metrics.registry
    assert registry.get_sample_value("workbench_requests_total", {"path": "/route", "status": "499"}) == 1
    assert registry.get_sample_value("workbench_requests_total", {"path": "/route", "status": "500"}) is None
    assert registry.get_sample_value("workbench_client_disconnects_total", {"path": "/route"}) == 1
    assert registry.get_sample_value("workbench_errors_total") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert any("client disconnected" in r.getMessage() for r in caplog.records)
