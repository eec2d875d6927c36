"""One thread owns the router: it routes queued requests in micro-batches and swaps pools between batches.

Concurrent requests wait in a queue while the encoder works; the next batch
takes all of them (up to ``max_batch`` messages), so under load the encoder
sees batches, which pay for every bundled backend (``benchmarks/route.py``),
and a lone request is routed at once. When the last batch held several
requests (traffic is concurrent), a batch also waits up to ``window_s`` for
more. A new pool handed over by the watcher takes effect between two
batches, so no request sees half a swap.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

log = logging.getLogger(__name__)

__all__ = ["RouterWorker", "Routed"]

_STOP = object()


class RouterWorker:
    """The encoder thread.

    Parameters
    ----------
    pool : ServedPool
    max_batch : int
        Messages per batch (a single larger request is routed whole).
    window_s : float
        How long a batch waits for more requests while traffic is concurrent.
    on_batch : callable, optional
        Called with each batch's decisions (metrics).
    """

    def __init__(self, pool, *, max_batch, window_s, on_batch=None):
        self.pool = pool
        self.max_batch, self.window_s, self.on_batch = max_batch, window_s, on_batch
        self._pending = None
        self._queue = queue.Queue()
        self._concurrent = False
        self._thread = threading.Thread(target=self._run, name="router", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        """Finish what is queued, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def swap(self, pool):
        """Serve ``pool`` from the next batch on."""
        self._pending = pool

    def submit(self, texts, loop, future):
        """Route ``texts``; ``future`` (of ``loop``) gets the list of decisions, or the exception."""
        self._queue.put((list(texts), loop, future))

    def _collect(self, first):
        jobs, n, stop = [first], len(first[0]), False
        deadline = time.monotonic() + (self.window_s if self._concurrent else 0.0)
        while n < self.max_batch:
            try:
                left = deadline - time.monotonic()
                job = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                stop = True
                break
            jobs.append(job)
            n += len(job[0])
        return jobs, stop

    @property
    def alive(self) -> bool:
        """Whether the thread is serving (``/healthz`` answers 503 when it is not)."""
        return self._thread.is_alive()

    def _run(self):
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs = [first]
            try:  # nothing a batch raises may end the thread: its requests get the error, the next batch is served
                jobs, stop = self._collect(first)
                self._concurrent = len(jobs) > 1
                if self._pending is not None:
                    self.pool, self._pending = self._pending, None
                self._route(jobs)
            except Exception as e:
                log.exception("the router thread failed on a batch of %d request(s)", len(jobs))
                for _, loop, fut in jobs:
                    _hand_over(loop, fut, None, e)

    def _route(self, jobs):
        """Route ``jobs`` as one batch; when it fails, each alone, so only a request that fails by itself gets an error."""
        texts = [t for job in jobs for t in job[0]]
        try:
            decisions = self.pool.router.route_batch(texts)
        except Exception as e:
            if len(jobs) == 1:
                log.exception("routing a request of %d message(s) failed", len(texts))
                _hand_over(jobs[0][1], jobs[0][2], None, e)
                return
            log.warning("a batch of %d requests failed (%s); routing them one by one", len(jobs), e)
            for job in jobs:
                self._route([job])
            return
        if self.on_batch is not None:
            self.on_batch(decisions)
        start = 0
        for job_texts, loop, fut in jobs:
            part = Routed(decisions[start:start + len(job_texts)])
            part.pool = self.pool  # the gateway reports the pool that made the decision
            _hand_over(loop, fut, part, None)
            start += len(job_texts)


def _hand_over(loop, fut, result, error):
    try:
        loop.call_soon_threadsafe(_settle, fut, result, error)
    except RuntimeError:  # the event loop is closed (shutdown): nobody waits for this answer
        pass


class Routed(list):
    """The decisions of one request, with ``pool``: the :class:`~.pools.ServedPool` that made them."""

    pool = None


def _settle(fut, result, error):
    if fut.done():  # the client went away
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
