"""A minimal client of the OpenAI-compatible chat-completions protocol, with retries and hard bounds.

What it sends, and where: one ``POST {base_url}/chat/completions`` per try,
with the system prompt (the taxonomy's categories), the message text, the
model name and ``Authorization: Bearer <key>``, to the host of ``base_url``
and nowhere else:

- **No redirects.** A 3xx answer is an error that stops the run; the key is
  never sent to the address a ``Location`` header names (urllib's default
  opener followed 301/302/303 and sent the key along).
- **Plain http** to a host other than this machine is warned about before the
  first request (anyone on the path can read the key).
- **A deadline per request** (``timeout``): connecting, sending, the headers
  and the whole body must finish within it, so a server trickling one byte a
  second cannot stall a run (a socket timeout alone bounds each read only).
- **A maximum response size** (``max_response_bytes``): a longer body is not read.
- **A request budget** (``max_requests``), shared by every thread: retries count.

Retries with exponential backoff and jitter on 429, 5xx, timeouts, dropped
connections and malformed 200 answers, honouring ``Retry-After``. The key is
read from an environment variable named by the caller (:func:`read_api_key`:
stripped and checked once) and is never logged or put in an error message;
every text a server sends back (a reply, a reason phrase, an invalid body)
has the key replaced (:func:`redact`) before it is stored or printed. Standard library only (http.client).
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.parse
from email.utils import parsedate_to_datetime

from .. import config as _config
from ..errors import ConfigError, WorkbenchError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "DEFAULT_KEY_ENV", "RETRY_STATUS", "LabelError", "InvalidResponse",
           "BudgetExhausted", "ChatClient", "read_api_key", "redact"]

DEFAULT_BASE_URL = "https://api.groq.com/openai/v1"
DEFAULT_MODEL = "llama-3.1-8b-instant"
DEFAULT_KEY_ENV = "GROQ_API_KEY"
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class LabelError(WorkbenchError):
    """A request that failed for good (retries exhausted, or a status not worth retrying)."""

    def __init__(self, message, *, status=None, fatal=False):
        super().__init__(message)
        self.status, self.fatal = status, fatal


class InvalidResponse(LabelError):
    """The server answered 200, but not with a chat completion (HTML, no ``choices``, too large), after every retry.

    ``raw`` holds the start of the body: the label cache records it as an invalid answer.
    """

    def __init__(self, message, raw):
        super().__init__(message)
        self.raw = raw


class BudgetExhausted(LabelError):
    """The request budget (``--limit``) is spent: the message stays unlabelled for a later run."""


class _Timeout(Exception):
    pass


#: What replaces a key in any text a server sent (a server may echo the request, headers included).
REDACTED = "[redacted key]"


def read_api_key(env_name):
    """The key in environment variable ``env_name``, stripped and checked once: one printable ASCII token.

    Every client of a key (the label client, the gateway's upstreams) reads it
    here. The message of a refused key names the variable and the problem,
    never the key: a CR/LF left by ``echo`` used to make the header builder
    raise with the whole key in the traceback.

    Raises
    ------
    ConfigError
        When the variable is unset or empty, or the key holds a space, a control or a non-ASCII character.
    """
    key = os.environ.get(env_name, "").strip()
    if not key:
        raise ConfigError(f"the API key environment variable {env_name} is not set")
    bad = next((i for i, c in enumerate(key) if not "!" <= c <= "~"), None)
    if bad is not None:
        raise ConfigError(f"the API key in {env_name} is not one printable ASCII token (a space, control or non-ASCII "
                          f"character at position {bad + 1} of {len(key)}); the key is not shown")
    return key


#: Shorter secrets are not replaced: a placeholder key such as ``k`` (local servers) would replace every ``k``
#: of a reply, and a key this short protects nothing anyway.
MIN_REDACTED_CHARS = 8


def redact(text, secrets):
    """``text`` with every one of ``secrets`` (and its URL-encoded form) replaced by :data:`REDACTED`."""
    text = str(text)
    for secret in secrets:
        if secret and len(secret) >= MIN_REDACTED_CHARS:
            for form in {secret, urllib.parse.quote(secret, safe="")}:
                text = text.replace(form, REDACTED)
    return text


def _one_line(text, limit=200):
    """A server-sourced phrase as one printable line (a reason phrase was printed raw)."""
    return "".join(c if c.isprintable() else " " for c in str(text))[:limit]


def retry_after_seconds(value):
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def is_loopback(host) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host in ("localhost", "localhost.localdomain") or str(host).endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


class ChatClient:
    """Minimal chat-completions client with retries, a deadline and a size cap per request.

    Parameters
    ----------
    base_url : str
        Up to and including the version, e.g. ``https://api.groq.com/openai/v1``.
    model : str
    api_key_env : str or None
        Name of the environment variable holding the key; empty or None sends
        no ``Authorization`` header (local servers).
    timeout : float
        Seconds one request may take in all (connect, send, headers, body).
    max_retries : int
        Retries after the first try.
    backoff, max_backoff : float
        Delay before retry ``i`` is ``min(max_backoff, backoff * 2**i)`` times
        a jitter factor in [0.5, 1]; a ``Retry-After`` header wins (capped at
        ``max_backoff``).
    seed : int or None
        Seed of the jitter.
    max_response_bytes : int
        Longest response body read.
    max_requests : int, optional
        Requests this client may send in all, retries included.
    """

    def __init__(self, base_url=DEFAULT_BASE_URL, model=DEFAULT_MODEL, *, api_key_env=DEFAULT_KEY_ENV, timeout=30.0,
                 max_retries=5, backoff=1.0, max_backoff=60.0, temperature=0.0, seed=None,
                 max_response_bytes=_config.LABEL_MAX_RESPONSE_BYTES, max_requests=None):
        self.base_url, self.model, self.api_key_env = base_url, model, api_key_env
        self.timeout, self.max_retries, self.backoff, self.max_backoff = timeout, max_retries, backoff, max_backoff
        self.temperature, self.seed = temperature, seed
        self.max_response_bytes, self.max_requests = max_response_bytes, max_requests

    def _validate(self):
        url = urllib.parse.urlsplit(str(self.base_url))
        try:
            url.port
        except ValueError:
            url = url._replace(scheme="")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"base_url must be an http:// or https:// URL; got {self.base_url!r}")
        if url.username or url.password:
            raise ConfigError("base_url must not hold credentials; the key comes from --api-key-env")
        numbers = (self.timeout, self.max_retries, self.backoff, self.max_backoff, self.max_response_bytes)
        if not (self.timeout > 0 and self.max_retries >= 0 and self.backoff >= 0 and self.max_backoff >= 0
                and self.max_response_bytes >= 1 and (self.max_requests is None or self.max_requests >= 0)):
            raise ConfigError(f"need timeout > 0, max_retries >= 0, backoff >= 0, max_backoff >= 0, "
                              f"max_response_bytes >= 1, max_requests >= 0; got {numbers}, {self.max_requests}")
        self._url = url
        self._key = None
        if self.api_key_env:
            self._key = read_api_key(self.api_key_env)
            if url.scheme == "http" and not is_loopback(url.hostname):
                log.warning("sending the API key over plain http to %s: anyone on the way can read it; use https",
                            url.hostname)
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self.retries = self.requests = 0

    def _take_request(self):
        with self._lock:
            if self.max_requests is not None and self.requests >= self.max_requests:
                raise BudgetExhausted(f"request limit of {self.max_requests} reached")
            self.requests += 1

    def _post(self, body, headers):
        """One POST within the deadline: ``(status, headers, body bytes or None when too large)``."""
        url = self._url
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = cls(url.hostname, url.port, timeout=self.timeout)
        deadline = time.monotonic() + self.timeout
        expired, held = threading.Event(), {}

        def abort():  # wakes a read blocked on a trickling server; the request then fails as timed out
            expired.set()
            if held.get("sock") is not None:
                try:
                    held["sock"].shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(self.timeout, abort)
        timer.daemon = True
        timer.start()
        try:
            conn.connect()
            held["sock"] = sock = conn.sock  # the response keeps reading from it after conn lets it go
            if expired.is_set():
                raise _Timeout()
            conn.request("POST", url.path.rstrip("/") + "/chat/completions", body=body, headers=headers)
            resp = conn.getresponse()
            declared = resp.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
                return resp.status, resp, None
            chunks, size = [], 0
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = resp.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_response_bytes:
                    return resp.status, resp, None
                chunks.append(chunk)
            if expired.is_set():
                raise _Timeout()
            return resp.status, resp, b"".join(chunks)
        except (OSError, http.client.HTTPException) as e:
            if expired.is_set() or isinstance(e, (TimeoutError, socket.timeout)):
                raise _Timeout() from None
            raise
        finally:
            timer.cancel()
            conn.close()
            if held.get("sock") is not None:
                held["sock"].close()

    def _answer(self, status, resp, raw):
        """The reply text of a response, or ``(problem, retry wait hint, raw text)`` to retry; raises when fatal."""
        where = f"{self._url.scheme}://{self._url.netloc}"
        if 300 <= status < 400:
            target = urllib.parse.urlsplit(resp.getheader("Location") or "")
            raise LabelError(f"HTTP {status} redirect from {where} to {target.scheme or '?'}://{target.hostname or '?'} "
                             "refused (the key is sent to base_url only; set --base-url to the final address)",
                             status=status, fatal=True)
        if status in RETRY_STATUS:
            return None, (f"HTTP {status}", retry_after_seconds(resp.getheader("Retry-After")), None)
        if not 200 <= status < 300:
            # 400/401/403/404 fail every message alike: stop the run (never echo the key)
            raise LabelError(f"HTTP {status} {self._clean(resp.reason, 80)} from {where}", status=status,
                             fatal=status in (401, 403, 404))
        if raw is None:
            return None, (f"response larger than {self.max_response_bytes} bytes", None, "")
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
            if isinstance(content, str):
                return redact(content, [self._key]), None
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            pass
        return None, ("malformed chat-completions response", None,
                      redact(raw[:300].decode("utf-8", "replace"), [self._key]))

    def _clean(self, text, limit=200):
        """Server-sourced ``text`` as one printable line without the key."""
        return _one_line(redact(text, [self._key]), limit)

    def complete(self, messages):
        """Send one chat-completions request; return the reply text (``choices[0].message.content``).

        Raises
        ------
        LabelError
            After the last retry, or at once for a redirect or a 4xx that is not worth retrying.
        InvalidResponse
            When every try got a 200 that is not a chat completion.
        BudgetExhausted
            When ``max_requests`` is spent.
        """
        if not hasattr(self, "_rng"):
            self._validate()
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Connection": "close"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        for attempt in range(self.max_retries + 1):
            self._take_request()
            wait_hint, invalid = None, None
            try:
                content, retry = self._answer(*self._post(body, headers))
                if retry is None:
                    return content
                problem, wait_hint, invalid = retry
            except _Timeout:
                problem = f"no complete answer within {self.timeout:g} s"
            except (OSError, http.client.HTTPException) as e:
                problem = f"connection failed ({type(e).__name__}: {self._clean(e)})"
            if attempt == self.max_retries:
                if invalid is not None:
                    raise InvalidResponse(f"{problem} after {attempt + 1} tries", invalid)
                raise LabelError(f"{problem} after {attempt + 1} tries")
            delay = min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + 0.5 * self._rng.random())
            if wait_hint is not None:
                delay = min(self.max_backoff, wait_hint)
            with self._lock:
                self.retries += 1
            log.info("%s; retry %d in %.2f s", problem, attempt + 1, delay)
            time.sleep(delay)
