"""The gateway's parts without a server: the upstreams file, client keys, the decision log, SSE usage, chat parsing."""
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.conversation import CONTEXT_RULES

from workbench.errors import ConfigError
from workbench.serve.chat import parse_chat_request, user_texts
from workbench.serve.clients import load_client_keys, token_digest
from workbench.serve.decision_log import DecisionLog, log_file_name
from workbench.serve.payloads import RequestError
from workbench.serve.records import FIELDS, log_record_preparer, new_record
from workbench.serve.relay import UsageScanner
from workbench.serve.server import check_gateway
from workbench.serve.upstreams import load_upstreams

TIERS = ["cheap", "medium", "strong"]
KEY = "sk-test-0123456789abcdef"
GOOD = {"cheap": {"base_url": "http://127.0.0.1:9001/v1", "model": "small", "api_key_env": "WB_T_CHEAP",
                  "fallback": ["medium"]},
        "medium": {"base_url": "https://api.example.com/v1/", "model": "mid", "api_key_env": "WB_T_CHEAP",
                   "fallback": ["strong"]},
        "strong": {"base_url": "http://localhost:9003/v1", "model": "big", "fallback": ["medium"]}}


def write(tmp_path, doc):
    path = tmp_path / "upstreams.yaml"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))  # JSON is YAML
    return path


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("WB_T_CHEAP", f"  {KEY}\n")
    monkeypatch.delenv("WB_T_MISSING", raising=False)


def test_a_good_file_is_read_with_its_keys_stripped_and_out_of_repr(tmp_path):
    ups = load_upstreams(write(tmp_path, {"abstain_tier": "strong", "tiers": GOOD}), tiers=TIERS)
    assert ups.alias == "auto" and ups.abstain_tier == "strong" and ups.on_upstream_failure == "fallback"
    assert ups.tiers["cheap"].api_key == KEY and ups.tiers["strong"].api_key == ""
    assert ups.tiers["medium"].base_url == "https://api.example.com/v1" and ups.tiers["strong"].fallback == ("medium",)
    assert KEY not in repr(ups) and ups.models == ["auto", "small", "mid", "big"]
    assert ups.tiers["cheap"].cost(1_000_000, 0) == 0.0


def with_tier(**changes):
    return {"tiers": {**GOOD, "cheap": {**GOOD["cheap"], **changes}}}


BAD = [
    ({"tiers": {**GOOD, "premium": GOOD["strong"]}}, "unknown tier 'premium'"),
    ({"tiers": {k: v for k, v in GOOD.items() if k != "medium"}}, "tier 'medium' of the pool's taxonomy has no upstream"),
    (with_tier(api_key_env="WB_T_MISSING"), "tiers.cheap: the environment variable WB_T_MISSING (api_key_env) is not set"),
    (with_tier(base_url="ftp://host/v1"), "tiers.cheap: base_url must be an http(s) URL"),
    (with_tier(base_url="http://user:pw@host/v1"), "must not carry credentials"),
    (with_tier(fallback=["cheap"]), "fallback cycle cheap -> cheap"),
    (with_tier(fallback=["medium", "medium"]), "fallback cycle cheap -> medium -> medium"),
    (with_tier(fallback=["gold"]), "fallback names unknown tier 'gold'"),
    (with_tier(timeout_s=0), "timeout_s must be a number >= 0.001; got 0"),
    (with_tier(retries=True), "retries must be an integer >= 0; got True"),
    (with_tier(model=""), "model must be a non-empty string"),
    (with_tier(colour="red"), "unknown key 'colour'"),
    ({"tiers": GOOD, "abstain_tier": "gold"}, "abstain_tier must be one of cheap, medium, strong; got 'gold'"),
    ({"tiers": GOOD, "on_upstream_failure": "retry"}, "on_upstream_failure must be one of fallback, fail"),
    ({"tiers": GOOD, "alias": "small"}, "alias 'small' is also an upstream model name"),
    ({"tiers": []}, "'tiers' must map each tier"),
    ("tiers: [unclosed", "not valid YAML"),
    ("- a list", "expected a mapping"),
]


@pytest.mark.parametrize("doc,message", BAD)
def test_a_bad_file_is_one_line_naming_the_file_and_never_the_key(tmp_path, doc, message):
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as err:
        load_upstreams(path, tiers=TIERS)
    text = str(err.value)
    assert message in text and text.startswith(str(path)) and "\n" not in text and KEY not in text


def test_a_key_with_inner_whitespace_is_refused_without_showing_it(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_T_CHEAP", "sk-abc\r\nX-Injected: 1")
    with pytest.raises(ConfigError, match="whitespace or control characters") as err:
        load_upstreams(write(tmp_path, {"tiers": GOOD}), tiers=TIERS)
    assert "sk-abc" not in str(err.value)


def test_client_keys_match_in_constant_time_by_digest(tmp_path, monkeypatch):
    path = tmp_path / "clients.txt"
    path.write_text(f"# comment\n{token_digest('tok-a')} bot-a  # trailing\n\n{token_digest('tok-b').upper()} bot-b\n")
    monkeypatch.setenv("WB_T_CLIENT", " tok-env ")
    keys = load_client_keys(path, env="WB_T_CLIENT")
    assert [keys.client(f"Bearer {t}") for t in ("tok-a", "tok-b", "tok-env")] == ["bot-a", "bot-b", "env"]
    assert [keys.client(h) for h in (None, "", "Bearer", "Bearer tok-c", "Basic tok-a", "tok-a")] == [None] * 6
    assert "tok-a" not in path.read_text()


@pytest.mark.parametrize("text,message", [("abc bot\n", ":1: expected '<64 hex"),
                                          (f"{token_digest('x')} a\n{token_digest('y')} a\n", ":2: client name 'a' given twice"),
                                          ("# nothing\n", "no client keys")])
def test_a_bad_client_keys_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "clients.txt"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_client_keys(path)


def test_upstreams_without_client_keys_refuse_a_public_address(tmp_path):
    gw = {"upstreams": str(write(tmp_path, {"tiers": GOOD}))}
    check_gateway(gw, TIERS, "127.0.0.1")
    check_gateway(gw, TIERS, "0.0.0.0", allow_anonymous=True)
    with pytest.raises(ConfigError, match="--host 0.0.0.0: the gateway holds upstream keys and has no client keys"):
        check_gateway(gw, TIERS, "0.0.0.0")
    (tmp_path / "c.txt").write_text(f"{token_digest('t')} bot\n")
    check_gateway(dict(gw, client_keys=str(tmp_path / "c.txt")), TIERS, "0.0.0.0")


def record(text="call me at +44 20 7946 0958 or mail a.b@example.com", **kw):
    rec = new_record("req-1")
    rec.update(text=text, tier="cheap", confidence=0.8123456, margin=float("nan"), **kw)
    return rec


def test_records_are_scrubbed_by_default_hashed_always_and_dropped_on_request():
    scrubbed = log_record_preparer("scrubbed")(record())
    assert "[phone]" in scrubbed["text"] and "[email]" in scrubbed["text"] and "example.com" not in scrubbed["text"]
    assert set(scrubbed) == set(FIELDS) and scrubbed["confidence"] == 0.8123 and scrubbed["margin"] is None
    assert scrubbed["time"].endswith("Z") and len(scrubbed["text_sha256"]) == 64
    none = log_record_preparer("none")(record())
    assert "text" not in none and none["text_sha256"] == scrubbed["text_sha256"]
    assert log_record_preparer("full")(record())["text"] == record()["text"]


def test_the_decision_log_writes_daily_files_and_drains_on_close(tmp_path):
    written = []
    log = DecisionLog(tmp_path / "log", prepare=log_record_preparer("none"), on_written=written.append).start()
    for i in range(50):
        log.write(record(request_id=f"r{i}"))
    log.close()
    lines = (tmp_path / "log" / log_file_name(__import__("time").time())).read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [f"r{i}" for i in range(50)] and sum(written) == 50


def test_an_unwritable_folder_is_counted_and_never_raises(tmp_path, caplog):
    (tmp_path / "taken").write_text("a file where the folder should be")
    lost = []
    log = DecisionLog(tmp_path / "taken" / "log", prepare=log_record_preparer("none"), on_error=lost.append).start()
    for _ in range(3):
        log.write(record())
        __import__("time").sleep(0.05)
    log.close()
    assert sum(lost) == 3 and len([r for r in caplog.records if "decision log" in r.getMessage()]) == 1


def test_a_full_disk_is_counted_and_never_raises(tmp_path, caplog):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    lost = []
    log = DecisionLog(tmp_path, prepare=log_record_preparer("none"), on_error=lost.append)
    os.symlink("/dev/full", tmp_path / log_file_name(__import__("time").time()))
    log.start()
    for _ in range(3):
        log.write(record())
    log.close()
    assert sum(lost) == 3 and any("No space left" in r.getMessage() for r in caplog.records)


STREAM = (b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
          b'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34}}\n\ndata: [DONE]\n\n')


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, len(STREAM)), max_size=8))
def test_usage_is_found_however_the_stream_is_cut_into_chunks(cuts):
    cuts = sorted(set(cuts))
    scanner = UsageScanner()
    for a, b in zip([0, *cuts], [*cuts, len(STREAM)]):
        scanner.feed(STREAM[a:b])
    assert scanner.usage == (12, 34)


def test_user_turns_are_the_text_of_user_messages_only():
    msgs = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is"}, {"type": "image_url", "image_url": {}},
                                         {"type": "text", "text": "in this picture?"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
            {"role": "tool", "content": "42"}, {"role": "user", "content": "  "}, {"role": "user", "content": "thanks"}]
    assert user_texts(msgs) == ["what is\nin this picture?", "thanks"]
    req = parse_chat_request(json.dumps({"model": "auto", "messages": msgs, "stream": True}).encode())
    assert req.stream and req.conversation_id.startswith("h-")
    req2 = parse_chat_request(json.dumps({"model": "auto", "messages": msgs, "user": "u-7"}).encode())
    assert req2.conversation_id == "u-7"


@pytest.mark.parametrize("body,status", [(b"{", 400), (b"[]", 422), (b'{"model": "auto"}', 422),
                                         (b'{"model": 3, "messages": [{"role": "user"}]}', 422),
                                         (b'{"model": "auto", "messages": [{"content": "x"}]}', 422),
                                         (b'{"model": "auto", "messages": [{"role": "user"}], "stream": "yes"}', 422)])
def test_a_bad_chat_body_is_refused(body, status):
    with pytest.raises(RequestError) as err:
        parse_chat_request(body)
    assert err.value.status == status


def test_read_transcripts_reads_a_decision_log_as_a_format(tmp_path):
    from workbench.errors import DataError
    from workbench.traffic.transcripts import read_transcripts

    prepare = log_record_preparer("scrubbed")
    recs = [prepare(record(text=t, conversation_id="c1", turn=i + 1)) for i, t in enumerate(["hi there", "mail x@y.org"])]
    recs.append(log_record_preparer("none")(record(conversation_id="c2", turn=1)))
    path = tmp_path / "decisions-2026-12-06.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows = read_transcripts(path)
    assert [(r["text"], r["conversation"], r["turn"], r["line"]) for r in rows] == [
        ("hi there", "c1", 1, 1), ("mail [email]", "c1", 2, 2), ("", "c2", 1, 3)]
    path.write_text(json.dumps(recs[0]) + "\n" + json.dumps({"text": "no id"}) + "\n")
    with pytest.raises(DataError, match=":2: not a decision record"):
        read_transcripts(path, fmt="decisions")


CONVERSATIONS = [["hi!"], ["write a python function that merges two sorted lists", "now make it faster"],
                 ["what is the capital of peru", "thanks", "prove that sqrt(2) is irrational", "shorter please"],
                 ["¿me ayudas con una consulta SQL?", "agrupada por mes", "y ordenada"]]


@pytest.mark.parametrize("policy", list(CONTEXT_RULES))
def test_the_gateway_decides_the_last_turn_as_route_conversation_does(small_npz, e5, policy):
    """Reading only the last two turns (what every non-sticky policy's last decision depends on) changes nothing."""
    import asyncio
    from types import SimpleNamespace

    from workbench.core.conversation import ConversationPolicy
    from workbench.serve.batching import RouterWorker
    from workbench.serve.gateway import route_turns
    import hashlib
    import time

    from workbench.core.router import Router
    from workbench.serve.pools import ServedPool

    pool = ServedPool(Router.load(small_npz, embedder=e5), str(small_npz),
                      hashlib.sha256(small_npz.read_bytes()).hexdigest(), time.time())
    state = SimpleNamespace(pool=pool, worker=RouterWorker(pool, max_batch=32, window_s=0.0).start())
    pol = ConversationPolicy(name=policy)
    try:
        for texts in CONVERSATIONS:
            got, sha = asyncio.run(route_turns(state, texts, pol))
            want = pool.router.route_conversation(texts, context=pol)[-1]
            assert (got.category, got.tier, got.abstain) == (want.category, want.tier, want.abstain), texts
            assert got.confidence == pytest.approx(want.confidence, abs=1e-6) and sha == pool.sha256
    finally:
        state.worker.stop()


_TRANSPORT_ERRORS = st.sampled_from([AttributeError("'NoneType' object has no attribute 'getpeername'"),
                                     OSError(104, "Connection reset by peer"), RuntimeError("transport closed"),
                                     ValueError("bad chunk"), KeyError("ssl_object")])


@settings(max_examples=25, deadline=None)
@given(_TRANSPORT_ERRORS, st.sampled_from(["send", "first chunk", "body"]), st.booleans())
def test_whatever_the_transport_raises_is_an_upstream_failure_never_a_500(error, where, stream):
    """Under an upstream that dies mid-request the transport stack raises its own errors (anyio's AttributeError
    on a closed socket was a 500 of the gateway under load): every one is an UpstreamFailure, which the gateway
    retries and falls back from, whether it comes at the request, the stream's first chunk or the body."""
    import asyncio

    import httpx

    from workbench.serve.forward import Forwarder, UpstreamFailure
    from workbench.serve.upstreams import Upstream, Upstreams

    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):
            raise error
            yield b""  # noqa: unreachable - an async generator that fails at its first chunk

    def handler(request):
        if where == "send":
            raise error
        return httpx.Response(200, stream=Broken(), headers={"content-type": "application/json"})

    upstream = Upstream("cheap", "http://127.0.0.1:9", "m", retries=1)
    forwarder = Forwarder(Upstreams({"cheap": upstream}))

    async def go():
        forwarder.clients["cheap"] = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        try:
            with pytest.raises(UpstreamFailure) as caught:
                await forwarder.send(upstream, {"model": "m", "messages": []}, stream=stream or where == "first chunk",
                                     request_id="r")
            return caught.value.reason
        finally:
            await forwarder.aclose()

    assert asyncio.run(go()) == "closed"
