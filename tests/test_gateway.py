"""The gateway end to end: three upstream servers on 127.0.0.1, ``workbench serve --upstreams`` in a real uvicorn,
driven by the official ``openai`` package, streaming and not.

Marked ``serve`` (slow): the gateway process loads the real default model.
Tests run in file order against one gateway; the key search reads the logs of everything before it.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fake_upstream import FakeUpstream, free_port
from tests.helpers import ROOT, log_lines

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.serve

KEYS = {"CHEAP_API_KEY": "sk-cheap-7f3a9c1e55d0", "MEDIUM_API_KEY": "sk-medium-a81b0c22e9f4",
        "STRONG_API_KEY": "sk-strong-4c6d8e0f1a2b"}
TOKEN, OTHER_TOKEN = "wb-client-token-9d8c7b6a", "wb-client-token-second-1234"
CHEAP_TEXT, STRONG_TEXT = "thanks, have a nice day!", "write a python function that merges two sorted lists"
MODELS = {"cheap": "small-chat", "medium": "mid-chat", "strong": "big-chat"}


def upstreams_yaml(ups, *, mode="fallback", cheap_timeout=2.0):
    tiers = {
        "cheap": dict(fallback=["medium"], timeout_s=cheap_timeout, price_in_per_mtok=0.1, price_out_per_mtok=0.4),
        "medium": dict(fallback=["strong"], timeout_s=10, price_in_per_mtok=0.5, price_out_per_mtok=1.5),
        "strong": dict(fallback=["medium"], timeout_s=10, price_in_per_mtok=3.0, price_out_per_mtok=15.0)}
    lines = ["alias: auto", "abstain_tier: medium", f"on_upstream_failure: {mode}", "tiers:"]
    for t, spec in tiers.items():
        spec = dict(spec, base_url=ups[t].base_url, model=MODELS[t], api_key_env=f"{t.upper()}_API_KEY", retries=1)
        lines.append(f"  {t}: {json.dumps(spec)}")
    return "\n".join(lines) + "\n"


class Gateway:
    """``python -m workbench -v serve --upstreams ...`` in a subprocess, its log in a file."""

    def __init__(self, pool, folder, upstreams_text, *extra):
        self.folder, self.port = folder, free_port()
        (folder / "upstreams.yaml").write_text(upstreams_text)
        from workbench.serve.clients import token_digest

        (folder / "clients.txt").write_text(f"# test clients\n{token_digest(TOKEN)} bot-a\n{token_digest(OTHER_TOKEN)} bot-b\n")
        self.log_path, self.decisions = folder / "gateway.log", folder / "decisions"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", "-v", "serve", "--pool", str(pool), "--port", str(self.port),
             "--upstreams", str(folder / "upstreams.yaml"), "--client-keys", str(folder / "clients.txt"),
             "--decision-log", str(self.decisions), *extra],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), **KEYS), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited: {self.log_path.read_text()}")
            try:
                urllib.request.urlopen(self.url("/healthz"), timeout=5).read()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("gateway did not start")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def client(self, token=TOKEN, **kw):
        return openai.OpenAI(base_url=self.url("/v1"), api_key=token, max_retries=0, timeout=30, **kw)

    def metric(self, name, **labels):
        text = urllib.request.urlopen(self.url("/metrics"), timeout=10).read().decode()
        total = 0.0
        for m in re.finditer(rf"^{re.escape(name)}(?:\{{(.*?)\}})? ([0-9.e+-]+)$", text, re.M):
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
        return total

    def records(self):
        """Every complete decision record so far."""
        return log_lines(self.decisions, "decisions-*.jsonl")

    def record(self, request_id, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.records() if r["request_id"] == request_id]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no decision record for {request_id}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()


@pytest.fixture(scope="module")
def ups():
    servers = {t: FakeUpstream(t, MODELS[t]).start() for t in MODELS}
    servers["medium"].chunk_delay = 0.0
    yield servers
    for s in servers.values():
        if s.server is not None and not s.server.should_exit:
            s.stop()


@pytest.fixture(autouse=True)
def _reset(request, ups):
    for s in ups.values():
        s.reset()
    yield


@pytest.fixture(scope="module")
def served_pool(small_npz, tmp_path_factory):
    pool = tmp_path_factory.mktemp("gwpool") / "pool.npz"
    pool.write_bytes(small_npz.read_bytes())
    return pool


@pytest.fixture(scope="module")
def gateway(served_pool, ups, tmp_path_factory):
    g = Gateway(served_pool, tmp_path_factory.mktemp("gw"), upstreams_yaml(ups))
    yield g
    g.stop()


@pytest.fixture(scope="module")
def expected(small_npz, e5):
    from workbench.core.router import Router

    router = Router.load(small_npz, embedder=e5)
    cheap, strong = router.route(CHEAP_TEXT), router.route(STRONG_TEXT)
    assert cheap.tier == "cheap" and strong.tier == "strong", (cheap, strong)
    return {"cheap": cheap, "strong": strong}


def chat(client, text, **kw):
    return client.chat.completions.with_raw_response.create(model=kw.pop("model", "auto"),
                                                            messages=[{"role": "user", "content": text}], **kw)


def test_a_routed_request_goes_to_its_tier_with_the_routing_headers(gateway, ups, expected, served_pool):
    import hashlib

    raw = chat(gateway.client(), STRONG_TEXT)
    completion = raw.parse()
    assert completion.choices[0].message.content == "answer from strong"
    h, d = raw.headers, expected["strong"]
    assert (h["x-workbench-tier"], h["x-workbench-category"]) == ("strong", d.category)
    assert float(h["x-workbench-confidence"]) == pytest.approx(d.confidence, abs=1e-3)
    assert h["x-workbench-abstain"] == "false" and h["x-workbench-fallback"] == ""
    assert h["x-workbench-pool-sha256"] == hashlib.sha256(served_pool.read_bytes()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{32}", h["x-request-id"])
    sent = ups["strong"].requests[-1]
    assert sent["body"]["model"] == "big-chat" and sent["authorization"] == f"Bearer {KEYS['STRONG_API_KEY']}"
    assert not ups["cheap"].requests and not ups["medium"].requests
    rec = gateway.record(h["x-request-id"])
    assert rec["tier"] == rec["upstream_tier"] == "strong" and rec["client"] == "bot-a" and rec["status"] == 200
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (11, 7)
    assert rec["cost"] == pytest.approx((11 * 3.0 + 7 * 15.0) / 1e6)
    assert rec["neighbors"] == d.neighbors[:3] and rec["text"] == STRONG_TEXT and len(rec["text_sha256"]) == 64


def test_a_stream_is_relayed_chunk_by_chunk_with_the_headers(gateway, ups, expected):
    ups["cheap"].chunk_delay, ups["cheap"].chunks = 0.4, 4
    client = gateway.client()
    started = time.perf_counter()
    with client.chat.completions.with_streaming_response.create(
            model="auto", messages=[{"role": "user", "content": CHEAP_TEXT}], stream=True) as resp:
        assert resp.headers["x-workbench-tier"] == "cheap"
        arrivals, parts = [], []
        for chunk in resp.parse():
            arrivals.append(time.perf_counter() - started)
            parts += [c.delta.content for c in chunk.choices if c.delta.content]
        rid = resp.headers["x-request-id"]
    assert "".join(parts) == "cheap-0 cheap-1 cheap-2 cheap-3 "
    assert arrivals[0] < arrivals[-1] - 1.0  # the first chunk came before the upstream had finished
    rec = gateway.record(rid)
    assert rec["stream"] is True and rec["status"] == 200 and rec["completion_tokens"] == 7  # usage of the last chunk


def test_a_concrete_model_passes_through_unrouted_and_models_lists_them(gateway, ups):
    raw = chat(gateway.client(), CHEAP_TEXT, model="big-chat")
    assert raw.parse().choices[0].message.content == "answer from strong"
    assert raw.headers["x-workbench-tier"] == "strong" and raw.headers["x-workbench-category"] == ""
    assert gateway.record(raw.headers["x-request-id"])["routed"] is False
    assert [m.id for m in gateway.client().models.list()] == ["auto", "small-chat", "mid-chat", "big-chat"]
    with pytest.raises(openai.NotFoundError):
        chat(gateway.client(), CHEAP_TEXT, model="gpt-unknown")


def test_a_missing_or_wrong_client_token_gets_401_and_healthz_stays_open(gateway, ups):
    for token in ("wrong-token", ""):
        with pytest.raises(openai.AuthenticationError):
            chat(gateway.client(token=token or "x", default_headers={"Authorization": token}), CHEAP_TEXT)
    with pytest.raises(openai.AuthenticationError):
        gateway.client(token="wrong").models.list()
    assert not any(s.requests for s in ups.values())
    assert urllib.request.urlopen(gateway.url("/healthz"), timeout=10).status == 200
    raw = chat(gateway.client(token=OTHER_TOKEN), CHEAP_TEXT)
    assert gateway.record(raw.headers["x-request-id"])["client"] == "bot-b"
    assert gateway.metric("workbench_gateway_requests_total", client="bot-b") >= 1


@pytest.mark.parametrize("mode,reason", [("500", "5xx"), ("429", "429"), ("slow", "timeout"), ("close", "closed"),
                                         ("redirect", "redirect")])
@pytest.mark.parametrize("stream", [False, True])
def test_each_failure_falls_back_loudly(gateway, ups, mode, reason, stream):
    ups["cheap"].mode = mode
    before = gateway.metric("workbench_fallbacks_total", reason=reason, **{"from": "cheap", "to": "medium"})
    client = gateway.client()
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model="auto", messages=[{"role": "user", "content": CHEAP_TEXT}], stream=True) as resp:
            headers = resp.headers
            text = "".join(c.delta.content or "" for chunk in resp.parse() for c in chunk.choices)
        assert text.startswith("medium-0")
    else:
        raw = chat(client, CHEAP_TEXT)
        headers = raw.headers
        assert raw.parse().choices[0].message.content == "answer from medium"
    assert headers["x-workbench-tier"] == "cheap" and headers["x-workbench-fallback"] == f"cheap->medium:{reason}"
    assert gateway.metric("workbench_fallbacks_total", reason=reason, **{"from": "cheap", "to": "medium"}) == before + 1
    rec = gateway.record(headers["x-request-id"])
    assert (rec["fallback_reason"], rec["upstream_tier"], rec["upstream_model"]) == (reason, "medium", "mid-chat")
    assert ups["medium"].requests[-1]["authorization"] == f"Bearer {KEYS['MEDIUM_API_KEY']}"
    if mode == "redirect":  # the key never went to the Location
        assert len(ups["cheap"].requests) == 1
    if mode in ("500", "429"):
        assert len(ups["cheap"].requests) == 2  # one retry, then the chain


def test_a_client_error_is_returned_as_it_is_and_never_retried_elsewhere(gateway, ups):
    ups["cheap"].mode = "400"
    with pytest.raises(openai.BadRequestError) as err:
        chat(gateway.client(), CHEAP_TEXT)
    assert "cheap says 400" in str(err.value) and err.value.response.headers["x-workbench-fallback"] == ""
    assert len(ups["cheap"].requests) == 1 and not ups["medium"].requests


def test_a_stream_failing_after_its_first_chunk_ends_with_an_error_event(gateway, ups):
    ups["cheap"].mode = "midstream"
    before = gateway.metric("workbench_stream_errors_total", tier="cheap")
    got = []
    with pytest.raises(openai.APIError) as err:
        with gateway.client().chat.completions.with_streaming_response.create(
                model="auto", messages=[{"role": "user", "content": CHEAP_TEXT}], stream=True) as resp:
            rid = resp.headers["x-request-id"]
            for chunk in resp.parse():
                got += [c.delta.content for c in chunk.choices]
    assert got == ["cheap-0 "] and "failed mid-stream (closed)" in str(err.value)
    assert gateway.metric("workbench_stream_errors_total", tier="cheap") == before + 1
    assert gateway.record(rid)["status"] == "stream_error" and not ups["medium"].requests


def test_a_client_disconnect_mid_stream_cancels_the_upstream_request(gateway, ups):
    ups["cheap"].chunk_delay, ups["cheap"].chunks = 0.2, 100
    with gateway.client().chat.completions.with_streaming_response.create(
            model="auto", messages=[{"role": "user", "content": CHEAP_TEXT}], stream=True) as resp:
        rid = resp.headers["x-request-id"]
        next(iter(resp.parse()))
    deadline = time.monotonic() + 5
    while ups["cheap"].cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ups["cheap"].cancelled == 1 and ups["cheap"].completed == 0
    assert gateway.record(rid)["status"] == "client_disconnected"


def test_a_hot_pool_reload_under_gateway_traffic_fails_no_request(gateway, served_pool, other_npz, small_npz):
    import hashlib

    old_sha, new_sha = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (small_npz, other_npz))
    seen, failures, stop = set(), [], threading.Event()

    def traffic(i):
        client = gateway.client()
        while not stop.is_set():
            try:
                raw = chat(client, f"{STRONG_TEXT} ({i})", stream=False)
                seen.add(raw.headers["x-workbench-pool-sha256"])
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                failures.append(repr(e))

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while old_sha not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
        tmp = served_pool.with_suffix(".tmp")
        tmp.write_bytes(other_npz.read_bytes())
        os.replace(tmp, served_pool)
        deadline = time.monotonic() + 60
        while new_sha not in seen and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
        tmp.write_bytes(small_npz.read_bytes())  # the later tests route with the first pool again
        os.replace(tmp, served_pool)
    assert failures == [] and {old_sha, new_sha} <= seen
    deadline = time.monotonic() + 60
    while gateway.metric("workbench_pool_reloads_total", result="ok") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert chat(gateway.client(), STRONG_TEXT).headers["x-workbench-pool-sha256"] == old_sha


def _one(gateway, i):
    """One request of the load test: its answer text and headers (streamed every other time)."""
    client = gateway.client()
    if i % 2:
        with client.chat.completions.with_streaming_response.create(
                model="auto", messages=[{"role": "user", "content": CHEAP_TEXT}], stream=True) as resp:
            text = "".join(c.delta.content or "" for chunk in resp.parse() for c in chunk.choices)
            return text.split("-")[0], dict(resp.headers)
    raw = chat(client, CHEAP_TEXT)
    return raw.parse().choices[0].message.content.split()[-1], dict(raw.headers)


def test_stopping_the_cheap_upstream_under_64_clients_fails_no_request_and_marks_every_fallback(gateway, ups, tmp_path):
    before = gateway.metric("workbench_fallbacks_total", **{"from": "cheap"})
    done = []

    def client_run(c):
        out = []
        for j in range(4):
            out.append(_one(gateway, c * 4 + j))
            done.append(1)
        return out

    with ThreadPoolExecutor(64) as ex:
        futures = [ex.submit(client_run, c) for c in range(64)]
        deadline = time.monotonic() + 60
        while len(done) < 64 and time.monotonic() < deadline:
            time.sleep(0.01)
        ups["cheap"].stop()
        try:
            results = [r for f in futures for r in f.result(timeout=120)]  # raises if any request failed
        finally:
            ups["cheap"].start()
    assert len(results) == 256
    fell_back = [h for who, h in results if who == "medium"]
    assert len(fell_back) > 0 and {who for who, _ in results} == {"cheap", "medium"}
    for who, h in results:  # answered by medium <=> marked as a fallback, in the headers ...
        assert h["x-workbench-tier"] == "cheap"
        assert (who == "medium") == h["x-workbench-fallback"].startswith("cheap->medium:"), (who, h)
    # ... in the decision records ...
    records = {r["request_id"]: r for r in gateway.records()}
    for who, h in results:
        rec = records.get(h["x-request-id"]) or gateway.record(h["x-request-id"])
        assert rec["upstream_tier"] == who and bool(rec["fallback_reason"]) == (who == "medium") and rec["status"] == 200
    # ... and in the metrics
    assert gateway.metric("workbench_fallbacks_total", **{"from": "cheap"}) - before == len(fell_back)


def test_the_decision_log_parses_and_workbench_import_reads_it(gateway, tmp_path):
    files = sorted(gateway.decisions.glob("decisions-*.jsonl"))
    assert files and all(re.fullmatch(r"decisions-\d{4}-\d{2}-\d{2}\.jsonl", f.name) for f in files)
    from workbench.serve.records import FIELDS

    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    records = [json.loads(line) for line in lines]
    assert len(records) > 256 and all(set(r) == set(FIELDS) for r in records)
    res = subprocess.run([sys.executable, "-m", "workbench", "import", *map(str, files), "--out",
                          str(tmp_path / "candidates.jsonl"), "--no-pool", "--no-near-duplicates", "--json",
                          str(tmp_path / "summary.json")],
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["read"] == len(records) and summary["kept"] >= 2
    kept = {json.loads(line)["text"] for line in (tmp_path / "candidates.jsonl").read_text().splitlines()}
    assert CHEAP_TEXT in kept and STRONG_TEXT in kept


@pytest.fixture(scope="module")
def abstaining_gateway(small_pool, ups, tmp_path_factory):
    """A second gateway: a pool that abstains below 0.99 confidence, ``fail`` mode, no text in the log."""
    from workbench.core.knn import KNNConfig
    from workbench.decisions.export import export_pool
    from workbench.decisions.targets import Targets

    folder = tmp_path_factory.mktemp("gw-fail")
    targets = Targets(policy="vote", criterion="confidence", threshold=0.99, max_downgrade=None, calibration="none")
    export_pool(small_pool, folder / "abstain.npz", KNNConfig(k=5, vote="distance", center=True), head="knn",
                targets=targets)
    g = Gateway(folder / "abstain.npz", folder, upstreams_yaml(ups, mode="fail"), "--log-text", "none")
    yield g
    g.stop()


def test_an_abstained_decision_goes_to_the_abstain_tier(abstaining_gateway, ups):
    g = abstaining_gateway
    before = g.metric("workbench_gateway_abstains_total", tier="medium")
    raw = chat(g.client(), CHEAP_TEXT)
    assert raw.headers["x-workbench-abstain"] == "true" and raw.headers["x-workbench-tier"] == "medium"
    assert raw.parse().choices[0].message.content == "answer from medium" and not ups["cheap"].requests
    assert g.metric("workbench_gateway_abstains_total", tier="medium") == before + 1
    rec = g.record(raw.headers["x-request-id"])
    assert rec["abstain"] is True and rec["decided_tier"] == "cheap" and rec["tier"] == "medium"
    assert "text" not in rec and len(rec["text_sha256"]) == 64  # --log-text none


def test_fail_mode_answers_503_naming_the_tier(abstaining_gateway, ups):
    g = abstaining_gateway
    ups["medium"].mode = "500"
    with pytest.raises(openai.InternalServerError) as err:
        chat(g.client(), CHEAP_TEXT)
    resp = err.value.response
    assert resp.status_code == 503 and "\n" not in resp.text.strip()
    assert resp.json() == {"error": "the upstream of tier 'medium' failed (5xx)", "status": 503}
    assert not ups["strong"].requests and g.metric("workbench_upstream_failures_total", tier="medium") >= 1
    assert g.record(resp.headers["x-request-id"])["status"] == 503


def test_no_log_or_decision_file_holds_a_key(gateway, abstaining_gateway):
    gateway.stop()  # flushes the decision log and ends the log
    abstaining_gateway.stop()
    secrets = [*KEYS.values(), TOKEN, OTHER_TOKEN]
    files = [p for g in (gateway, abstaining_gateway) for p in g.folder.rglob("*") if p.is_file()
             and p.name not in ("clients.txt", "upstreams.yaml")]
    assert any(p.name.startswith("decisions-") for p in files) and any(p.name == "gateway.log" for p in files)
    assert "fell back" in gateway.log_path.read_text() or "falling back" in gateway.log_path.read_text()
    for p in files:
        text = p.read_bytes().decode("utf-8", "replace")
        assert not [s for s in secrets if s in text], p


@pytest.mark.parametrize("extra,message", [
    (["--upstreams", "{folder}/missing.yaml"], "missing.yaml: cannot read the upstreams file"),
    (["--upstreams", "{folder}/up.yaml"], "tiers.cheap: the environment variable WB_UNSET_KEY (api_key_env) is not set"),
    (["--upstreams", "{folder}/ok.yaml", "--host", "0.0.0.0"], "--host 0.0.0.0: the gateway holds upstream keys"),
])
def test_the_cli_refuses_a_bad_gateway_setup_in_one_line_with_exit_2(small_npz, tmp_path, extra, message):
    (tmp_path / "up.yaml").write_text("tiers:\n" + "".join(
        f"  {t}: {{base_url: 'http://127.0.0.1:9/v1', model: m{t}, api_key_env: WB_UNSET_KEY}}\n" for t in MODELS))
    (tmp_path / "ok.yaml").write_text("tiers:\n" + "".join(
        f"  {t}: {{base_url: 'http://127.0.0.1:9/v1', model: m{t}}}\n" for t in MODELS))
    res = subprocess.run([sys.executable, "-m", "workbench", "serve", "--pool", str(small_npz), "--port",
                          str(free_port()), *[e.format(folder=tmp_path) for e in extra]], cwd=ROOT,
                         env={k: v for k, v in dict(os.environ, PYTHONPATH=str(ROOT)).items() if k != "WB_UNSET_KEY"},
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
