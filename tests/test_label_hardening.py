"""The label client against hostile and broken servers (issue 11, classes 1, 7, 8 and 15).

Every server here is real (``tests/fake_llm.py`` on 127.0.0.1). Where the old client would hang, the call runs in a
thread the harness waits for with a timeout: the assertion is on the outcome, never on a duration.
"""
import json
import logging
import threading

import pytest

from tests.fake_llm import FakeLLM, hash_category
from tests.helpers import write_jsonl
from tests.test_label import KEY, KEY_ENV, ROWS, client, run_label
from workbench.traffic.label import ChatClient, LabelCache, LabelError, label_messages

HARNESS_TIMEOUT = 30  # seconds the harness waits for a call that must end on its own well before


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def call_in_thread(fn):
    """Run ``fn`` in a daemon thread; returns ``(finished, result or exception)`` after at most HARNESS_TIMEOUT s."""
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - the test inspects whatever happened
            box["result"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(HARNESS_TIMEOUT)
    return not t.is_alive(), box.get("result")


MESSAGES = [{"role": "system", "content": "label"}, {"role": "user", "content": ROWS[0]["text"]}]


# -- class 1: the key never follows a redirect -------------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_refused_and_the_key_never_reaches_the_other_host(key_env, taxonomy, tmp_path, status):
    with FakeLLM() as other, FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("redirect", status, other.base_url + "/chat/completions")]
        with pytest.raises(LabelError, match=rf"HTTP {status} redirect .* refused") as e:
            label_messages(ROWS[:1], taxonomy, client(llm), tmp_path / "c.jsonl", concurrency=1)
        assert other.requests == []  # nothing at all went to the other port, let alone the key
    assert KEY not in str(e.value)
    assert not (tmp_path / "c.jsonl").exists() or not LabelCache(tmp_path / "c.jsonl").entries


def test_plain_http_to_another_host_warns_before_sending_the_key(key_env, caplog):
    with caplog.at_level(logging.WARNING, logger="workbench.traffic.chat_client"):
        ChatClient("http://labels.example.com/v1", "m", api_key_env=KEY_ENV)._validate()
        ChatClient("http://127.0.0.1:8000/v1", "m", api_key_env=KEY_ENV)._validate()
        ChatClient("https://labels.example.com/v1", "m", api_key_env=KEY_ENV)._validate()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "plain http to labels.example.com" in warnings[0] and KEY not in warnings[0]


# -- class 7: a deadline and a size cap per request ------------------------------------------------------------


def test_a_server_trickling_one_byte_at_a_time_hits_the_deadline(key_env):
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("trickle", 0.1)]  # the whole answer would take about a minute
        c = client(llm, timeout=1.0, max_retries=0)
        finished, result = call_in_thread(lambda: c.complete(MESSAGES))
    assert finished, "the request outlived its deadline"
    assert isinstance(result, LabelError) and "no complete answer within 1 s" in str(result)


@pytest.mark.parametrize("declared", [True, False])
def test_a_huge_body_is_not_read_past_the_limit(key_env, declared):
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("huge", 64 * 2**20, declared)]
        c = client(llm, max_retries=0, max_response_bytes=64 * 1024)
        finished, result = call_in_thread(lambda: c.complete(MESSAGES))
        sent = llm.bytes_sent
    assert finished and isinstance(result, LabelError) and "larger than 65536 bytes" in str(result)
    assert sent < 16 * 2**20  # the server could not push the 64 MiB: the client stopped reading and hung up


def test_a_normal_answer_still_comes_through_with_the_bounds(key_env, taxonomy, tmp_path):
    with FakeLLM() as llm:
        labelled, s = label_messages(ROWS, taxonomy, client(llm, max_response_bytes=4096), tmp_path / "c.jsonl")
    assert [r["category"] for r in labelled] == [hash_category(r["text"]) for r in ROWS] and s["requests"] == 5


# -- class 8: spending ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"<html>502 bad gateway</html>", b'{"choices": []}', b'{"choices": [{}]}'])
def test_a_200_that_is_not_a_chat_completion_is_cached_as_invalid_and_not_paid_for_again(key_env, taxonomy,
                                                                                          tmp_path, body):
    cache = tmp_path / "c.jsonl"
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("body", body)] * 2
        labelled, s = label_messages(ROWS[:1], taxonomy, client(llm, max_retries=1), cache)
        assert labelled == [] and s["failed"] == 1 and s["errors"] == 0 and llm.count(ROWS[0]["text"]) == 2
        _, again = label_messages(ROWS[:1], taxonomy, client(llm), cache)
        assert llm.count(ROWS[0]["text"]) == 2 and again["requests"] == 0 and again["failed"] == 1
        relabelled, retried = label_messages(ROWS[:1], taxonomy, client(llm), cache, retry_failed=True)
    entry = LabelCache(cache).get(ROWS[0]["text"], "test-model")
    assert entry["category"] == hash_category(ROWS[0]["text"]) and len(relabelled) == 1


def test_limit_counts_requests_retries_included(key_env, taxonomy, tmp_path):
    with FakeLLM() as llm:
        llm.script[ROWS[0]["text"]] = [("status", 503), ("status", 503)]
        labelled, s = label_messages(ROWS, taxonomy, client(llm), tmp_path / "c.jsonl", concurrency=1, limit=2)
        assert len(llm.requests) == 2
    assert labelled == [] and s["requests"] == 2 and s["remaining"] == 5


@pytest.mark.parametrize("option, value", [("--limit", "-1"), ("--concurrency", "0"), ("--timeout", "nan"),
                                           ("--timeout", "-5"), ("--max-retries", "-1"), ("--backoff", "inf"),
                                           ("--max-response-bytes", "0"), ("--seed", "-3"), ("--limit", "1e3"),
                                           ("--limit", "9" * 5000)])
def test_invalid_numeric_options_are_one_line_usage_errors(option, value, capsys):
    from workbench.cli import main

    with pytest.raises(SystemExit) as e:
        main(["label", "--input", "x.jsonl", "--out", "y.jsonl", option, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and option in err and "must be" in err
    assert "usage:" not in err and "Traceback" not in err


@pytest.mark.parametrize("script", [[("status", 503)] * 2, [("reply", "no idea")] * 2])
def test_a_run_where_nothing_could_be_labelled_exits_non_zero(tmp_path, script):
    inp = write_jsonl(tmp_path / "cand.jsonl", ROWS[:2])
    with FakeLLM() as llm:
        for r in ROWS[:2]:
            llm.script[r["text"]] = list(script)
        res = run_label(llm, inp, tmp_path / "out.jsonl", tmp_path / "c.jsonl", "--max-retries", "0")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and "no message could be labelled" in res.stderr


# -- class 13 for label: an output that is an input ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["--out", "--cache"])
def test_label_refuses_to_write_over_its_input(tmp_path, which):
    inp = write_jsonl(tmp_path / "cand.jsonl", ROWS)
    before = inp.read_bytes()
    out = {"--out": inp, "--cache": tmp_path / "c.jsonl"}
    if which == "--cache":
        out = {"--out": tmp_path / "o.jsonl", "--cache": inp}
    with FakeLLM() as llm:
        res = run_label(llm, inp, out["--out"], out["--cache"], "--limit", "1")
        assert llm.requests == []
    assert res.returncode == 2 and f"{which} {inp} is also an input" in res.stderr
    assert inp.read_bytes() == before


# -- class 15: a half-written cache line -------------------------------------------------------------------------------


def test_a_partial_last_cache_line_is_cut_before_the_next_answer_is_appended(key_env, taxonomy, tmp_path):
    cache = tmp_path / "c.jsonl"
    good = {"hash": "a" * 64, "model": "test-model", "id": "x", "category": "coding", "problem": None, "raw": None}
    cache.write_text(json.dumps(good) + "\n" + '{"hash": "bbb", "model": "test-mo', encoding="utf-8")
    with FakeLLM() as llm:
        label_messages(ROWS[:2], taxonomy, client(llm), cache, concurrency=1)
    again = LabelCache(cache)
    assert again.get(ROWS[0]["text"], "test-model")["category"] == hash_category(ROWS[0]["text"])
    assert again.get(ROWS[1]["text"], "test-model") is not None and ("a" * 64, "test-model") in again.entries
    assert all(json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines())


def test_a_complete_last_entry_without_its_newline_is_kept(key_env, taxonomy, tmp_path):
    cache = tmp_path / "c.jsonl"
    good = {"hash": "a" * 64, "model": "test-model", "id": "x", "category": "coding", "problem": None, "raw": None}
    cache.write_text(json.dumps(good), encoding="utf-8")
    with FakeLLM() as llm:
        label_messages(ROWS[:1], taxonomy, client(llm), cache)
    entries = LabelCache(cache).entries
    assert ("a" * 64, "test-model") in entries and len(entries) == 2
