import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ROOT, write_jsonl
from tests.fake_llm import FakeLLM, hash_category
from workbench.errors import ConfigError
from workbench.traffic.label import ChatClient, LabelCache, LabelError, build_prompt, label_messages, parse_reply

KEY_ENV, KEY = "WB_TEST_LLM_KEY", "sk-test-DO-NOT-LEAK-4f9a2c"
ROWS = [
    {"id": "m1", "text": "write a bash loop over all .csv files"},
    {"id": "m2", "text": "thanks, good night!"},
    {"id": "m3", "text": "¿Cuál es la capital de Perú?"},
    {"id": "m4", "text": "为什么天空是蓝色的？"},
    {"id": "m5", "text": "Schreib ein Gedicht über den Herbst"},
]
FAST = dict(timeout=2.0, max_retries=3, backoff=0.01, max_backoff=2.0, seed=0)


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def client(llm, **kw):
    return ChatClient(llm.base_url, "test-model", api_key_env=KEY_ENV, **dict(FAST, **kw))


def test_prompt_lists_every_category_with_its_description_and_asks_for_json(taxonomy):
    prompt = build_prompt(taxonomy)
    for cat in taxonomy.categories:
        assert f"- {cat}: {taxonomy.descriptions[cat]}" in prompt
    assert '{"category":' in prompt and "JSON" in prompt


@pytest.mark.parametrize("content, category, problem", [
    ('{"category": "coding"}', "coding", None),
    ('```json\n{"category": "analysis"}\n```', "analysis", None),
    ('{"category": "chitchat"}', None, "unknown category 'chitchat'"),
    ("It is coding.", None, "reply is not JSON"),
    ('{"label": "coding"}', None, "reply has no 'category'"),
    ("", None, "empty reply"),
])
def test_parse_reply_validates_against_the_taxonomy_and_never_guesses(taxonomy, content, category, problem):
    assert parse_reply(content, taxonomy) == (category, problem)


def test_labels_every_message_with_the_servers_answer_and_sends_the_key(taxonomy, key_env, tmp_path):
    with FakeLLM(key=KEY) as llm:
        labelled, s = label_messages(ROWS, taxonomy, client(llm), tmp_path / "cache.jsonl")
    assert [r["category"] for r in labelled] == [hash_category(r["text"]) for r in ROWS]
    assert all(r["label_source"] == "test-model" for r in labelled)
    assert (s["labelled"], s["requests"], s["failed"], s["errors"]) == (5, 5, 0, 0)
    assert {r["auth"] for r in llm.requests} == {f"Bearer {KEY}"}
    assert llm.requests[0]["system"] == build_prompt(taxonomy)


def test_503s_are_retried_until_an_answer_comes(taxonomy, key_env, tmp_path):
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("status", 503), ("status", 502)]
        labelled, s = label_messages(ROWS[:2], taxonomy, client(llm), tmp_path / "c.jsonl")
        assert llm.count(ROWS[0]["text"]) == 3
    assert len(labelled) == 2 and s["retried"] == 2 and s["errors"] == 0


def test_429_waits_for_retry_after_even_when_backoff_is_tiny(taxonomy, key_env, tmp_path):
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("status", 429, "0.4")]
        labelled, s = label_messages(ROWS[:1], taxonomy, client(llm, backoff=0.001), tmp_path / "c.jsonl")
        t = [r["t"] for r in llm.requests]
    assert len(labelled) == 1 and s["retried"] == 1
    assert t[1] - t[0] >= 0.39


def test_a_slow_response_beyond_the_timeout_is_retried(taxonomy, key_env, tmp_path):
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("sleep", 1.0)]
        labelled, s = label_messages(ROWS[:1], taxonomy, client(llm, timeout=0.3), tmp_path / "c.jsonl")
        assert llm.count(ROWS[0]["text"]) == 2
    assert labelled[0]["category"] == hash_category(ROWS[0]["text"]) and s["retried"] == 1


def test_a_malformed_response_body_is_retried(taxonomy, key_env, tmp_path):
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("body", b"<html>bad gateway</html>"), ("body", b'{"choices": []}')]
        labelled, s = label_messages(ROWS[:1], taxonomy, client(llm), tmp_path / "c.jsonl")
    assert len(labelled) == 1 and s["retried"] == 2


@pytest.mark.parametrize("raw, problem", [("I think this is coding", "reply is not JSON"),
                                          ('{"category": "smalltalk"}', "unknown category 'smalltalk'")])
def test_an_invalid_answer_is_a_failure_with_the_raw_reply_never_a_guess(taxonomy, key_env, tmp_path, raw, problem):
    cache = tmp_path / "c.jsonl"
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("reply", raw)]
        labelled, s = label_messages(ROWS[:2], taxonomy, client(llm), cache)
    assert [r["id"] for r in labelled] == ["m2"]
    assert s["failed"] == 1 and s["failures"] == [{"id": "m1", "problem": problem, "raw": raw}]
    entry = LabelCache(cache).get(ROWS[0]["text"], "test-model")
    assert entry["category"] is None and entry["raw"] == raw


def test_a_cached_failure_is_not_paid_for_again_unless_asked(taxonomy, key_env, tmp_path):
    cache = tmp_path / "c.jsonl"
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("reply", "no idea")]
        label_messages(ROWS[:1], taxonomy, client(llm), cache)
        _, again = label_messages(ROWS[:1], taxonomy, client(llm), cache)
        assert llm.count(ROWS[0]["text"]) == 1 and again["failed"] == 1 and again["requests"] == 0
        labelled, retried = label_messages(ROWS[:1], taxonomy, client(llm), cache, retry_failed=True)
        assert llm.count(ROWS[0]["text"]) == 2
    assert len(labelled) == 1 and retried["labelled"] == 1


def test_exhausted_retries_count_as_errors_and_are_not_cached(taxonomy, key_env, tmp_path):
    cache = tmp_path / "c.jsonl"
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("status", 503)] * 3
        labelled, s = label_messages(ROWS[:2], taxonomy, client(llm, max_retries=2), cache)
        assert s["errors"] == 1 and s["remaining"] == 1 and "HTTP 503 after 3 tries" in s["failures"][0]["problem"]
        labelled, s = label_messages(ROWS[:2], taxonomy, client(llm), cache)
    assert len(labelled) == 2 and s["labelled"] == 1 and s["cached"] == 1


def test_a_second_run_is_served_from_the_cache(taxonomy, key_env, tmp_path):
    cache = tmp_path / "c.jsonl"
    with FakeLLM() as llm:
        first, _ = label_messages(ROWS, taxonomy, client(llm), cache)
        second, s = label_messages(ROWS, taxonomy, client(llm), cache)
        assert len(llm.requests) == 5
    assert second == first and s["cached"] == 5 and s["requests"] == 0


def test_requests_in_flight_are_bounded(taxonomy, key_env, tmp_path):
    rows = [{"id": f"x{i}", "text": f"message number {i}"} for i in range(12)]
    with FakeLLM(delay=0.1) as llm:
        labelled, _ = label_messages(rows, taxonomy, client(llm), tmp_path / "c.jsonl", concurrency=3)
        assert 1 < llm.max_inflight <= 3
    assert [r["id"] for r in labelled] == [r["id"] for r in rows]


def test_a_wrong_key_stops_the_run_without_echoing_the_key(taxonomy, monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-123")
    with FakeLLM(key=KEY) as llm:
        with pytest.raises(LabelError) as e:
            label_messages(ROWS, taxonomy, client(llm), tmp_path / "c.jsonl", concurrency=1)
        assert len(llm.requests) == 1
    assert "HTTP 401" in str(e.value) and "sk-wrong" not in str(e.value)


def test_a_missing_key_variable_is_a_config_error(taxonomy, monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"{KEY_ENV} is not set"):
        label_messages(ROWS, taxonomy, ChatClient("http://127.0.0.1:9/v1", "m", api_key_env=KEY_ENV), tmp_path / "c")


def test_a_truncated_last_cache_line_is_skipped(tmp_path):
    good = {"hash": "a" * 64, "model": "m", "id": "x", "category": "coding", "problem": None, "raw": None}
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(good) + "\n" + '{"hash": "bbb", "mod', encoding="utf-8")
    assert list(LabelCache(path).entries) == [("a" * 64, "m")]


# -- the CLI as a subprocess: the key never reaches a file; a killed run resumes ---------------------------

def run_label(llm, inp, out, cache, *extra, wait=True):
    env = dict(os.environ, **{KEY_ENV: KEY}, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "workbench", "label", "--input", str(inp), "--out", str(out), "--cache",
           str(cache), "--base-url", llm.base_url, "--model", "test-model", "--api-key-env", KEY_ENV,
           "--backoff", "0.01", *extra]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    # a test run started in the background (`cmd &` without job control) inherits SIGINT ignored, and Python keeps it
    # ignored: give the child the disposition an interactive Ctrl-C meets
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_cli_label_writes_labelled_rows_and_never_writes_the_key(tmp_path):
    inp = write_jsonl(tmp_path / "cand.jsonl", ROWS)
    out, cache, js = tmp_path / "out.jsonl", tmp_path / "cache.jsonl", tmp_path / "s.json"
    with FakeLLM(key=KEY) as llm:
        llm.script[ROWS[1]["text"]] = [("reply", "casual, I think")]
        res = run_label(llm, inp, out, cache, "--json", str(js))
    assert res.returncode == 0, res.stderr
    assert "4 labelled" in res.stdout and "1 invalid answers" in res.stdout
    assert len(out.read_text().splitlines()) == 4
    for f in (out, cache, js):
        assert KEY not in f.read_text(encoding="utf-8")
    assert KEY not in res.stdout + res.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_run_killed_midway_resumes_without_paying_twice(tmp_path, sig):
    rows = [{"id": f"k{i:02d}", "text": f"please label message {i}"} for i in range(12)]
    inp = write_jsonl(tmp_path / "cand.jsonl", rows)
    out, cache = tmp_path / "out.jsonl", tmp_path / "cache.jsonl"
    with FakeLLM(delay=0.15) as llm:
        # the later messages answer slowly, so the run cannot finish before the signal however the test is scheduled
        llm.script.update({r["text"]: [("sleep", 2.0)] for r in rows[6:]})
        proc = run_label(llm, inp, out, cache, "--concurrency", "1", wait=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not cache.exists() or len(cache.read_text().splitlines()) < 4):
            time.sleep(0.02)
        proc.send_signal(sig)
        proc.communicate(timeout=30)
        done_first = [json.loads(line)["id"] for line in cache.read_text().splitlines()]
        assert 4 <= len(done_first) < 12 and not out.exists()
        llm.set_delay(0)
        llm.script.clear()
        res = run_label(llm, inp, out, cache, "--concurrency", "1")
        assert res.returncode == 0, res.stderr
        counts = {r["id"]: llm.count(r["text"]) for r in rows}
        assert all(counts[i] == 1 for i in done_first)  # labelled before the kill: never requested again
        assert all(1 <= c <= 2 for c in counts.values())
        assert len(llm.requests) <= 12 + 1  # at most the one in flight at the kill is asked twice
    entries = [json.loads(line) for line in cache.read_text().splitlines()]
    assert sorted(e["id"] for e in entries) == [r["id"] for r in rows]  # one line per message, none lost
    assert f"{len(done_first)} from the cache" in res.stdout
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [r["id"] for r in rows]
    if sig == signal.SIGINT:
        assert proc.returncode == 130


def test_limit_sends_at_most_that_many_requests_and_leaves_the_rest(taxonomy, key_env, tmp_path):
    with FakeLLM() as llm:
        labelled, s = label_messages(ROWS, taxonomy, client(llm), tmp_path / "c.jsonl", limit=2)
        assert len(llm.requests) == 2
    assert [r["id"] for r in labelled] == ["m1", "m2"] and s["remaining"] == 3


class _SlowStart(ChatClient):
    """A client whose threads reach the request budget in the reverse of the messages' order (the first message
    waits longest), as a loaded machine may schedule them."""

    def complete(self, messages):
        index = next(i for i, r in enumerate(ROWS) if r["text"] in messages[-1]["content"])
        time.sleep(0.03 * (len(ROWS) - index))
        return super().complete(messages)


@settings(max_examples=12, deadline=None)
@given(limit=st.integers(0, len(ROWS)), concurrency=st.integers(1, 4))
def test_a_limit_labels_the_first_messages_in_order_whatever_the_threads_do(taxonomy, tmp_path_factory, limit,
                                                                             concurrency):
    with pytest.MonkeyPatch.context() as mp, FakeLLM() as llm:
        mp.setenv(KEY_ENV, KEY)
        c = _SlowStart(llm.base_url, "test-model", api_key_env=KEY_ENV, **FAST)
        labelled, s = label_messages(ROWS, taxonomy, c, tmp_path_factory.mktemp("c") / "c.jsonl", limit=limit,
                                     concurrency=concurrency)
        assert len(llm.requests) == limit
    assert [r["id"] for r in labelled] == [r["id"] for r in ROWS[:limit]] and s["remaining"] == len(ROWS) - limit


def test_retry_after_accepts_seconds_and_http_dates():
    from email.utils import formatdate

    from workbench.traffic.chat_client import retry_after_seconds as _retry_after

    assert _retry_after("2.5") == 2.5 and _retry_after(None) is None and _retry_after("soon") is None
    assert 5 < _retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10
