"""Who may use the gateway: client tokens checked against SHA-256 digests, never stored in clear.

The client-keys file holds one client a line, ``<64 hex of sha256(token)> <name>``
(``#`` starts a comment)::

    # printf %s "$TOKEN" | sha256sum
    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 support-bot

A token may also come from an environment variable (its client is named
``env``). A request's ``Authorization: Bearer <token>`` is hashed and
compared with every digest in constant time (:func:`hmac.compare_digest`,
no early exit), so the answer time says nothing about how close a guess was.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re

from ..errors import ConfigError

__all__ = ["ClientKeys", "load_client_keys", "token_digest"]

_LINE = re.compile(r"([0-9a-fA-F]{64})\s+([A-Za-z0-9_.@-]{1,64})")


def token_digest(token: str) -> str:
    """The hex SHA-256 of a client token (what the client-keys file holds)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ClientKeys:
    """Digests and names of the clients; :meth:`client` names the one a request authenticates as."""

    def __init__(self, entries):
        self.entries = [(bytes.fromhex(d), name) for d, name in entries]

    def __bool__(self):
        return bool(self.entries)

    def client(self, authorization):
        """The client's name for an ``Authorization`` header value, or ``None``."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode("utf-8", "surrogatepass")).digest()
        found = None
        for known, name in self.entries:  # every entry compared: no early exit on a match
            if hmac.compare_digest(digest, known) and found is None:
                found = name
        return found


def load_client_keys(path=None, *, env=None) -> ClientKeys:
    """Read the client-keys file ``path`` and/or the token in environment variable ``env``.

    Raises
    ------
    ConfigError
        A line that is not a digest and a name (named by file and line, the line itself not shown),
        a name given twice, or an unset ``env`` variable.
    """
    entries, names = [], set()
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the client-keys file ({getattr(e, 'strerror', None) or e})") \
                from None
        for n, line in enumerate(lines, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = _LINE.fullmatch(line)
            if m is None:
                raise ConfigError(f"{path}:{n}: expected '<64 hex digits of sha256(token)> <name>' "
                                  f"(name: letters, digits, _ . @ -)")
            if m.group(2) in names:
                raise ConfigError(f"{path}:{n}: client name {m.group(2)!r} given twice")
            names.add(m.group(2))
            entries.append((m.group(1).lower(), m.group(2)))
        if not entries:
            raise ConfigError(f"{path}: no client keys (one '<sha256 hex> <name>' per line)")
    if env is not None:
        token = os.environ.get(env, "").strip()
        if not token:
            raise ConfigError(f"--client-key-env: the environment variable {env} is not set")
        entries.append((token_digest(token), "env"))
    return ClientKeys(entries)
