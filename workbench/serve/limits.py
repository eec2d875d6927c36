"""Bounds of every service setting, checked once whether the service starts from the CLI or from Python.

An unbounded option listened on another port (``--port 99999``) or killed the
batching thread (``--batch-window-ms inf``) while ``/healthz`` said ok.
"""
from __future__ import annotations

import math

from ..errors import ConfigError

__all__ = ["check_settings"]

_BOUNDS = {"port": (int, 1, 65535), "max_batch": (int, 1, 1024), "window_ms": (float, 0, 1000),
           "threads": (int, 1, 256), "max_messages": (int, 1, 10_000), "max_chars": (int, 1, 10**7),
           "max_body": (int, 1, 1 << 30), "max_total_chars": (int, 1, 10**8), "poll_s": (float, 0.01, 3600)}


def check_settings(**settings):
    """Refuse a service setting of the wrong type or outside its bounds (``None`` means the default)."""
    for name, value in settings.items():
        if name not in _BOUNDS or value is None:
            continue
        kind, low, high = _BOUNDS[name]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or
                                                                                  isinstance(value, int))
        if not ok or (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
            raise ConfigError(f"{name} must be {'an integer' if kind is int else 'a number'} between {low} and "
                              f"{high}; got {value!r}")
