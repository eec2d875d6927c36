"""A minimal client of the OpenAI-compatible chat-completions protocol, with retries.

Retries with exponential backoff and jitter on 429, 5xx, timeouts and dropped
connections, honouring ``Retry-After``. The API key is read from an
environment variable named by the caller and is never logged or put in an
error message. Standard library only (urllib), so it adds no dependency.
"""
from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime

from ..errors import ConfigError, WorkbenchError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "DEFAULT_KEY_ENV", "RETRY_STATUS", "LabelError", "ChatClient"]

DEFAULT_BASE_URL = "https://api.groq.com/openai/v1"
DEFAULT_MODEL = "llama-3.1-8b-instant"
DEFAULT_KEY_ENV = "GROQ_API_KEY"
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class LabelError(WorkbenchError):
    """A request that failed for good (retries exhausted, or a status not worth retrying)."""

    def __init__(self, message, *, status=None, fatal=False):
        super().__init__(message)
        self.status, self.fatal = status, fatal


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


class ChatClient:
    """Minimal chat-completions client with retries.

    Parameters
    ----------
    base_url : str
        Up to and including the version, e.g. ``https://api.groq.com/openai/v1``.
    model : str
    api_key_env : str or None
        Name of the environment variable holding the key; empty or None sends
        no ``Authorization`` header (local servers).
    timeout : float
        Seconds per request.
    max_retries : int
        Retries after the first try.
    backoff, max_backoff : float
        Delay before retry ``i`` is ``min(max_backoff, backoff * 2**i)`` times
        a jitter factor in [0.5, 1]; a ``Retry-After`` header wins (capped at
        ``max_backoff``).
    seed : int or None
        Seed of the jitter.
    """

    def __init__(self, base_url=DEFAULT_BASE_URL, model=DEFAULT_MODEL, *, api_key_env=DEFAULT_KEY_ENV, timeout=30.0,
                 max_retries=5, backoff=1.0, max_backoff=60.0, temperature=0.0, seed=None):
        self.base_url, self.model, self.api_key_env = base_url, model, api_key_env
        self.timeout, self.max_retries, self.backoff, self.max_backoff = timeout, max_retries, backoff, max_backoff
        self.temperature, self.seed = temperature, seed

    def _validate(self):
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://; got {self.base_url!r}")
        if self.timeout <= 0 or self.max_retries < 0 or self.backoff < 0:
            raise ConfigError(f"need timeout > 0, max_retries >= 0, backoff >= 0; got {self.timeout}, "
                              f"{self.max_retries}, {self.backoff}")
        self._key = None
        if self.api_key_env:
            self._key = os.environ.get(self.api_key_env)
            if not self._key:
                raise ConfigError(f"the API key environment variable {self.api_key_env} is not set")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self.retries = 0

    def complete(self, messages):
        """Send one chat-completions request; return the reply text (``choices[0].message.content``)."""
        if not hasattr(self, "_rng"):
            self._validate()
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        for attempt in range(self.max_retries + 1):
            wait_hint, problem = None, None
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                try:
                    return json.loads(raw)["choices"][0]["message"]["content"]
                except (ValueError, KeyError, IndexError, TypeError):
                    problem = "malformed chat-completions response"
            except urllib.error.HTTPError as e:
                if e.code not in RETRY_STATUS:
                    # 400/401/403/404 fail every message alike: stop the run (never echo the key)
                    raise LabelError(f"HTTP {e.code} {e.reason} from {url}", status=e.code,
                                     fatal=e.code in (401, 403, 404)) from None
                problem, wait_hint = f"HTTP {e.code}", retry_after_seconds(e.headers.get("Retry-After"))
            except (TimeoutError, socket.timeout):
                problem = f"timed out after {self.timeout:g} s"
            except (urllib.error.URLError, ConnectionError, OSError) as e:
                reason = getattr(e, "reason", e)
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    problem = f"timed out after {self.timeout:g} s"
                else:
                    problem = f"connection failed ({reason})"
            if attempt == self.max_retries:
                raise LabelError(f"{problem} after {attempt + 1} tries")
            delay = min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + 0.5 * self._rng.random())
            if wait_hint is not None:
                delay = min(self.max_backoff, wait_hint)
            with self._lock:
                self.retries += 1
            log.info("%s; retry %d in %.2f s", problem, attempt + 1, delay)
            time.sleep(delay)
