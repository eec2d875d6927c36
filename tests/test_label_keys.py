"""Issue 21 class 2: the API key never reaches stderr, the label cache or the summary, whatever the server echoes.

A real server on 127.0.0.1 echoes the request's Authorization header into its reply, into a 200 that is not a
chat completion, and into its HTTP reason phrase. Hypothesis generates keys with stray blanks and controls.
"""
import json
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings, strategies as st

from tests.helpers import ROOT, write_jsonl
from tests.test_label import FAST, KEY, KEY_ENV, ROWS
from workbench.errors import ConfigError
from workbench.traffic.chat_client import ChatClient, LabelError, read_api_key, redact
from workbench.traffic.label import label_messages


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth, mode = self.headers.get("Authorization", ""), self.server.mode
        if mode == "reason":
            body = auth.encode()
            self.send_response(400, message=f"bad request from {auth}")
        else:
            content = json.dumps({"category": "coding", "reasoning": f"you sent {auth}"})
            reply = {"choices": [{"message": {"content": content}}]}
            body = json.dumps(reply).encode() if mode == "reply" else f"<html>echo: {auth}</html>".encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def echo():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    httpd.daemon_threads, httpd.mode = True, "reply"
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    httpd.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("mode", ["reply", "invalid"])
def test_an_echoing_server_never_puts_the_key_into_the_cache_and_the_cache_is_private(echo, mode, monkeypatch,
                                                                                       taxonomy, tmp_path):
    monkeypatch.setenv(KEY_ENV, KEY)
    echo.mode = mode
    cache = tmp_path / "cache.jsonl"
    client = ChatClient(echo.base_url, "test-model", api_key_env=KEY_ENV, **dict(FAST, max_retries=0))
    label_messages(ROWS[:2], taxonomy, client, cache)
    text = cache.read_text()
    assert KEY not in text and (mode == "reply" or "[redacted key]" in text)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_a_reason_phrase_holding_the_key_is_printed_redacted(echo, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    echo.mode = "reason"
    client = ChatClient(echo.base_url, "test-model", api_key_env=KEY_ENV, **dict(FAST, max_retries=0))
    with pytest.raises(LabelError) as e:
        client.complete([{"role": "user", "content": "hi"}])
    assert KEY not in str(e.value) and "HTTP 400" in str(e.value) and "[redacted key]" in str(e.value)


def test_the_cli_summary_and_stderr_never_hold_the_key(echo, tmp_path):
    echo.mode = "invalid"
    inp = write_jsonl(tmp_path / "cand.jsonl", ROWS[:2])
    out, cache, js = tmp_path / "out.jsonl", tmp_path / "cache.jsonl", tmp_path / "s.json"
    res = subprocess.run([sys.executable, "-m", "workbench", "label", "--input", str(inp), "--out", str(out),
                          "--cache", str(cache), "--base-url", echo.base_url, "--model", "m", "--api-key-env",
                          KEY_ENV, "--backoff", "0.01", "--max-retries", "0", "--json", str(js)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env=dict(os.environ, **{KEY_ENV: KEY + "\r\n"}, PYTHONPATH=str(ROOT)))
    written = [p.read_text() for p in (js, cache, out) if p.exists()]
    assert all(KEY not in t for t in [res.stdout, res.stderr, *written]), res.stderr


@pytest.mark.parametrize("value", ["sk-abc\r\n", "  sk-abc\n", "\tsk-abc "])
def test_a_key_with_stray_blanks_is_stripped(value, monkeypatch):
    monkeypatch.setenv("WB_K", value)
    assert read_api_key("WB_K") == "sk-abc"


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40).filter(lambda k: "\x00" not in k))
def test_any_key_is_accepted_as_one_printable_token_or_refused_without_showing_it(key):
    os.environ["WB_FUZZ_KEY"] = key
    try:
        got = read_api_key("WB_FUZZ_KEY")
    except ConfigError as e:
        secret = key.strip()
        assert "\n" not in str(e) and (len(secret) < 3 or secret not in str(e))
    else:
        assert got == key.strip() and got.isascii() and got.isprintable() and " " not in got
        f"Bearer {got}".encode("latin-1")  # the header builder cannot raise on it
    finally:
        del os.environ["WB_FUZZ_KEY"]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=40), st.text(max_size=30),
       st.text(max_size=30))
def test_redact_removes_the_key_wherever_it_stands(key, before, after):
    import urllib.parse

    for text in (before + key + after, before + urllib.parse.quote(key, safe="") + after):
        assert key not in redact(text, [key]) or key in before + after


def test_a_placeholder_key_too_short_to_be_a_secret_does_not_mangle_replies():
    assert redact('{"category": "simple_lookup"}', ["k"]) == '{"category": "simple_lookup"}'
    assert redact("token sk-1234567890 here", ["sk-1234567890"]) == "token [redacted key] here"
