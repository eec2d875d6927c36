"""Running the service on uvicorn: one process, or ``workers`` processes sharing the port.

SIGTERM (or Ctrl-C) stops accepting connections, lets in-flight requests
finish (up to ``SERVE_GRACEFUL_S`` seconds) and then drains the encoder
queue. SIGHUP reloads the pool (one process; with several workers,
uvicorn restarts them, and each loads the pool as it starts).
"""
from __future__ import annotations

import json
import os

from .. import config as _config
from ..errors import ConfigError, require
from .app import create_app
from .limits import check_settings
from .pools import load_served_pool

__all__ = ["serve", "app_from_env", "check_settings", "transport_limits"]

_ENV = "WORKBENCH_SERVE"


def app_from_env():
    """The app of a worker process (``workers > 1``): its settings travel in one environment variable."""
    return create_app(**json.loads(os.environ[_ENV]))


def check_gateway(gateway, tiers, host, *, allow_anonymous=False):
    """Validate the gateway settings before anything listens: the upstreams file, the client keys, the bind address.

    With upstreams (paid keys) and no client keys, only a loopback address is served unless ``allow_anonymous``.
    """
    from ..traffic.chat_client import is_loopback
    from .clients import load_client_keys
    from .upstreams import load_upstreams

    load_upstreams(gateway["upstreams"], tiers=tiers)
    keyed = gateway.get("client_keys") or gateway.get("client_key_env")
    if keyed:
        load_client_keys(gateway.get("client_keys"), env=gateway.get("client_key_env"))
    elif not is_loopback(host) and not allow_anonymous:
        raise ConfigError(f"--host {host}: the gateway holds upstream keys and has no client keys; give "
                          f"--client-keys FILE or --client-key-env VAR (or --allow-anonymous) to listen beyond loopback")


def transport_limits():
    """uvicorn's limits: a connection cap, a cap on a request head, and an idle keep-alive timeout.

    A client that trickles its headers holds no more than one of the
    ``limit_concurrency`` slots until the header cap or the keep-alive timeout
    closes it. The h11 protocol is chosen explicitly: the header cap is an h11
    setting, which uvicorn's httptools protocol would ignore.
    """
    return dict(limit_concurrency=_config.SERVE_MAX_CONNECTIONS, timeout_keep_alive=_config.SERVE_KEEP_ALIVE_S,
                h11_max_incomplete_event_size=_config.SERVE_MAX_HEADER_BYTES, http="h11")


def start_line(loaded, *, host, port, workers, gateway=None):
    """What ``workbench serve`` says once its pool is loaded: where it listens and what it serves."""
    where = f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"
    line = (f"serving {loaded.rows} rows (backend {loaded.backend}, sha256 {loaded.sha256[:12]}) on {where} "
            f"with {workers} worker(s)")
    if gateway:
        line += f"; gateway at {where}/v1 (upstreams {gateway['upstreams']})"
    return line


def serve(pool, *, host=_config.SERVE_HOST, port=_config.SERVE_PORT, workers=1, log_level="info",
          allow_anonymous=False, announce=None, **settings):
    """Serve ``pool`` until SIGTERM or Ctrl-C.

    Parameters
    ----------
    pool : path
    host, port
        Where to listen (127.0.0.1 by default: put a reverse proxy in front to expose it).
    workers : int
        Processes (each loads the model and the pool).
    allow_anonymous : bool
        Serve the gateway beyond loopback without client keys.
    announce : callable, optional
        Called with one line (:func:`start_line`) once the pool is loaded, before the server listens.
    settings
        Passed to :func:`workbench.serve.app.create_app` (batching, limits, threads, ``gateway``).
    """
    uvicorn = require("uvicorn", purpose="workbench serve")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1; got {workers!r}")
    check_settings(port=port, **settings)
    if settings.get("gateway"):  # before the model loads: a setup error is one line at once
        from ..core.artifact import load_pool_npz

        check_gateway(settings["gateway"], load_pool_npz(pool).metadata["tiers"], host, allow_anonymous=allow_anonymous)
    loaded = load_served_pool(pool, threads=settings.get("threads"), allowed_backends=settings.get("allowed_backends"),
                              sha256=settings.get("pool_sha256"))  # a bad pool: one clear error, no server
    if announce is not None:
        announce(start_line(loaded, host=host, port=port, workers=workers, gateway=settings.get("gateway")))
    common = dict(host=host, port=port, log_level=log_level, access_log=False,
                  timeout_graceful_shutdown=_config.SERVE_GRACEFUL_S, lifespan="on", **transport_limits())
    if workers == 1:
        uvicorn.run(create_app(pool, loaded=loaded, **settings), **common)
    else:
        os.environ[_ENV] = json.dumps(dict(settings, pool_path=str(pool)))
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # set before a worker imports prometheus_client
            import tempfile

            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="workbench-metrics-")
        uvicorn.run("workbench.serve.server:app_from_env", factory=True, workers=workers, **common)
