"""The pool a service serves: loaded and verified in the background, watched for atomic replacement and SIGHUP.

A replacement is loaded and checked (schema, shapes, hashes; see
:func:`workbench.core.artifact.load_pool_npz`) off the serving path; only a
pool that passes is handed over, and the old one keeps serving until the
encoder thread swaps them between two batches. A file that fails is
refused, logged and counted, and is not tried again until it changes.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass

from ..core.artifact import load_pool_npz
from ..core.embed import check_backend_allowed, get_embedder
from ..core.router import Router
from ..errors import WorkbenchError

log = logging.getLogger(__name__)

__all__ = ["ServedPool", "load_served_pool", "PoolWatcher"]


@dataclass
class ServedPool:
    """A router ready to serve, with what ``/healthz`` says about its file."""

    router: Router
    path: str
    sha256: str
    loaded: float

    @property
    def rows(self) -> int:
        return len(self.router.artifact.labels)

    @property
    def backend(self) -> str:
        return self.router.metadata["backend"]


def _signature(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: Messages every pool routes before it serves: a pool whose values pass the schema but route to NaN
#: (or raise) is refused here, not on every request after a reload.
PROBE = ("how do I reverse a string in python", "write me a haiku about autumn rain", "hello")


def check_probe(router, where):
    """Route :data:`PROBE` through ``router``; a raise or a non-finite confidence refuses the pool."""
    import math

    try:
        decisions = router.route_batch(list(PROBE))
    except Exception as e:
        raise WorkbenchError(f"{where}: the pool fails on a probe message ({type(e).__name__}: {e})") from None
    for d in decisions:
        if not math.isfinite(float(d.confidence)) or d.tier not in router.tiers:
            raise WorkbenchError(f"{where}: the pool routes a probe message to confidence {d.confidence!r}, "
                                 f"tier {d.tier!r}; refused")


def load_served_pool(path, *, previous=None, threads=None, allowed_backends=None, sha256=None) -> ServedPool:
    """Load and verify ``path``; reuse ``previous``'s encoder when the pool names the same backend.

    The file's SHA-256 and its content come from the same version of the
    file: if it is replaced while loading, it is read again. With ``sha256``,
    any other content is refused (``serve --pool-sha256``). Every pool routes
    :data:`PROBE` before it is returned.
    """
    path = str(path)
    for _ in range(5):
        before = _signature(path)
        digest = _file_sha256(path)
        artifact = load_pool_npz(path)
        if _signature(path) == before:
            break
    else:  # pragma: no cover - a file replaced five times during one load
        raise WorkbenchError(f"{path}: keeps changing while it is loaded")
    if sha256 is not None and digest != sha256.lower():
        raise WorkbenchError(f"{path}: sha256 {digest[:12]}... is not the pinned {sha256[:12]}... (--pool-sha256)")
    # the pool names its backend: only the allowed ones are constructed (default: the bundled registry)
    check_backend_allowed(artifact.metadata["backend"], allowed_backends, where=path)
    same = previous is not None and previous.router.embedder.spec == {
        k: artifact.metadata[k] for k in ("backend", "model_id", "dim", "prefix")}
    embedder = previous.router.embedder if same else get_embedder(artifact.metadata["backend"], threads=threads)
    router = Router(artifact, embedder)
    check_probe(router, path)  # also loads the model here, not on the first request
    return ServedPool(router, path, digest, time.time())


class PoolWatcher:
    """A daemon thread that reloads the pool when its file changes or :meth:`trigger` is called (SIGHUP).

    Parameters
    ----------
    path : path
    current : callable
        Returns the pool being served (its encoder is reused).
    on_pool : callable
        Called with a new, verified :class:`ServedPool`.
    on_result : callable, optional
        Called with ``True`` (loaded) or ``False`` (refused) after every attempt.
    poll_s : float
        Seconds between two looks at the file.
    """

    def __init__(self, path, current, on_pool, *, on_result=None, poll_s=0.5, threads=None, allowed_backends=None,
                 sha256=None):
        self.path, self.current, self.on_pool, self.on_result = str(path), current, on_pool, on_result
        self.sha256 = sha256
        self.poll_s, self.threads, self.allowed_backends = poll_s, threads, allowed_backends
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._seen = _signature(self.path)
        self._thread = threading.Thread(target=self._run, name="pool-watcher", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def trigger(self):
        """Reload now, even if the file looks unchanged (what SIGHUP does)."""
        self._seen = None
        self._wake.set()

    def stop(self):
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def _run(self):
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                sig = _signature(self.path)
            except OSError:
                continue  # between an unlink and a rename, or gone: keep serving what we have
            if sig == self._seen:
                continue
            self._seen = sig
            try:
                pool = load_served_pool(self.path, previous=self.current(), threads=self.threads,
                                        allowed_backends=self.allowed_backends, sha256=self.sha256)
            except Exception as e:  # a refused pool must never stop the service: log it and keep serving
                log.error("refused replacement pool %s (still serving sha256 %s): %s", self.path,
                          self.current().sha256[:12], e)
                ok = False
            else:
                log.info("loaded replacement pool %s (sha256 %s, %d rows)", self.path, pool.sha256[:12], pool.rows)
                self.on_pool(pool)
                ok = True
            if self.on_result is not None:
                self.on_result(ok)
