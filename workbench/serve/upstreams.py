"""The upstreams file of the gateway (YAML): which model serves each tier, where, with which key, and what to do when it fails.

::

    alias: auto                     # the model name that asks for routing
    abstain_tier: medium            # where a decision the pool abstains on goes
    on_upstream_failure: fallback   # or: fail (503 naming the tier)
    tiers:
      cheap:  {base_url: "http://127.0.0.1:9001/v1", model: "small-chat", api_key_env: CHEAP_API_KEY,
               timeout_s: 30, retries: 1, fallback: [medium], price_in_per_mtok: 0.10, price_out_per_mtok: 0.40}
      ...

Validated once, when the service starts: an unknown key or tier, a tier of
the pool without an upstream, a key variable that is unset, empty or holds
whitespace, a URL that is not http(s), or a fallback chain that names its own
tier or a tier twice is a one-line :class:`~workbench.errors.ConfigError`
naming the file (the CLI exits 2). A tier's fallback chain is its own list,
tried in order (not the listed tiers' chains), so ``medium: [strong]`` and
``strong: [medium]`` is two chains, not a loop. The key of each tier is read
from the environment here and kept only in memory; it is never part of an
error message or a ``repr``.
"""
from __future__ import annotations

import math
import os
import re
import urllib.parse
from dataclasses import dataclass, field

from .. import config as _config
from ..errors import ConfigError, require

__all__ = ["Upstream", "Upstreams", "load_upstreams", "FAILURE_MODES"]

FAILURE_MODES = ("fallback", "fail")
_TOP = {"alias", "abstain_tier", "on_upstream_failure", "tiers"}
_TIER = {"base_url", "model", "api_key_env", "timeout_s", "retries", "fallback", "price_in_per_mtok",
         "price_out_per_mtok", "max_response_bytes"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Upstream:
    """One tier's model endpoint (the key is left out of ``repr`` and comparisons)."""

    tier: str
    base_url: str
    model: str
    api_key: str = field(repr=False, compare=False, default="")
    api_key_env: str = ""
    timeout_s: float = _config.GATEWAY_TIMEOUT_S
    retries: int = _config.GATEWAY_RETRIES
    fallback: tuple = ()
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    max_response_bytes: int = _config.GATEWAY_MAX_RESPONSE_BYTES

    def cost(self, prompt_tokens, completion_tokens) -> float:
        """Dollars for this many tokens at this upstream's prices."""
        return ((prompt_tokens or 0) * self.price_in_per_mtok + (completion_tokens or 0) * self.price_out_per_mtok) / 1e6


@dataclass(frozen=True)
class Upstreams:
    """The whole file: the alias, the abstain tier, the failure mode and one :class:`Upstream` per tier."""

    tiers: dict
    alias: str = _config.GATEWAY_ALIAS
    abstain_tier: str = "medium"
    on_upstream_failure: str = "fallback"
    path: str = ""

    def by_model(self, model):
        """The upstream serving ``model`` by name, or ``None``."""
        return next((u for u in self.tiers.values() if u.model == model), None)

    @property
    def models(self):
        return [self.alias] + list(dict.fromkeys(u.model for u in self.tiers.values()))


def _number(where, key, value, *, minimum=0.0, integer=False):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value) or value < minimum:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: {key} must be {kind} >= {minimum:g}; got {value!r}")
    return value


def _key_from_env(where, name):
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise ConfigError(f"{where}: api_key_env must be an environment variable name; got {name!r}")
    value = os.environ.get(name)
    if value is None or not value.strip():
        raise ConfigError(f"{where}: the environment variable {name} (api_key_env) is not set")
    value = value.strip()
    if any(c.isspace() or not c.isprintable() for c in value):  # would break or split the Authorization header
        raise ConfigError(f"{where}: the environment variable {name} holds whitespace or control characters")
    return value


def _base_url(where, url):
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: base_url must be an http(s) URL with a host; got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(f"{where}: base_url must not carry credentials, a query or a fragment")
    return url.rstrip("/")


def _upstream(path, tier, spec, tiers):
    where = f"{path}: tiers.{tier}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping with base_url, model and api_key_env")
    unknown = sorted(set(spec) - _TIER)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_TIER))})")
    for key in ("base_url", "model"):
        if not isinstance(spec.get(key), str) or not spec[key].strip():
            raise ConfigError(f"{where}: {key} must be a non-empty string; got {spec.get(key)!r}")
    fallback = spec.get("fallback", [])
    if not isinstance(fallback, list) or not all(isinstance(t, str) for t in fallback):
        raise ConfigError(f"{where}: fallback must be a list of tier names; got {fallback!r}")
    for t in fallback:
        if t not in tiers:
            raise ConfigError(f"{where}: fallback names unknown tier {t!r} (tiers: {', '.join(tiers)})")
    if tier in fallback or len(set(fallback)) != len(fallback):
        raise ConfigError(f"{where}: fallback cycle {' -> '.join([tier, *fallback])} (a chain names its own tier "
                          f"or a tier twice)")
    key = _key_from_env(where, spec.get("api_key_env")) if "api_key_env" in spec else ""
    return Upstream(
        tier=tier, base_url=_base_url(where, spec["base_url"]), model=spec["model"].strip(), api_key=key,
        api_key_env=spec.get("api_key_env", ""),
        timeout_s=float(_number(where, "timeout_s", spec.get("timeout_s", _config.GATEWAY_TIMEOUT_S), minimum=0.001)),
        retries=_number(where, "retries", spec.get("retries", _config.GATEWAY_RETRIES), integer=True),
        fallback=tuple(fallback),
        price_in_per_mtok=float(_number(where, "price_in_per_mtok", spec.get("price_in_per_mtok", 0.0))),
        price_out_per_mtok=float(_number(where, "price_out_per_mtok", spec.get("price_out_per_mtok", 0.0))),
        max_response_bytes=_number(where, "max_response_bytes",
                                   spec.get("max_response_bytes", _config.GATEWAY_MAX_RESPONSE_BYTES), minimum=1,
                                   integer=True))


def _read_yaml(path):
    yaml = require("yaml", purpose="the gateway's upstreams file")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the upstreams file ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', None) or 'parse error'})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'tiers'")
    return data


def load_upstreams(path, *, tiers) -> Upstreams:
    """Read and validate an upstreams file against the pool's tiers.

    Parameters
    ----------
    path : path
    tiers : sequence of str
        The tiers of the served pool's taxonomy, cheapest first: each needs an upstream, and no other may appear.

    Raises
    ------
    ConfigError
        One line naming the file, the tier and the problem.
    """
    path, tiers = str(path), list(tiers)
    data = _read_yaml(path)
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP))})")
    spec = data.get("tiers")
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"{path}: 'tiers' must map each tier to its upstream")
    for t in spec:
        if t not in tiers:
            raise ConfigError(f"{path}: unknown tier {t!r} (the pool's tiers: {', '.join(tiers)})")
    missing = [t for t in tiers if t not in spec]
    if missing:
        raise ConfigError(f"{path}: tier {missing[0]!r} of the pool's taxonomy has no upstream")
    alias = data.get("alias", _config.GATEWAY_ALIAS)
    if not isinstance(alias, str) or not alias.strip():
        raise ConfigError(f"{path}: alias must be a non-empty string; got {alias!r}")
    abstain = data.get("abstain_tier", "medium" if "medium" in tiers else tiers[-1])
    if abstain not in tiers:
        raise ConfigError(f"{path}: abstain_tier must be one of {', '.join(tiers)}; got {abstain!r}")
    mode = data.get("on_upstream_failure", "fallback")
    if mode not in FAILURE_MODES:
        raise ConfigError(f"{path}: on_upstream_failure must be one of {', '.join(FAILURE_MODES)}; got {mode!r}")
    ups = {t: _upstream(path, t, spec[t], tiers) for t in tiers}
    if alias in {u.model for u in ups.values()}:
        raise ConfigError(f"{path}: alias {alias!r} is also an upstream model name")
    return Upstreams(ups, alias=alias.strip(), abstain_tier=abstain, on_upstream_failure=mode, path=path)
