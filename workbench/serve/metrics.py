"""Service metrics in the Prometheus text format (no client library: counters, gauges and histograms by hand)."""
from __future__ import annotations

import threading
import time

__all__ = ["Metrics", "LATENCY_BUCKETS", "BATCH_BUCKETS"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _Histogram:
    def __init__(self, buckets):
        self.buckets, self.counts, self.sum, self.count = tuple(buckets), [0] * len(buckets), 0.0, 0

    def observe(self, value):
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name, labels=""):
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b}"}} {c}' for b, c in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        out += [f"{name}_sum{{{labels}}} {self.sum:.6f}" if labels else f"{name}_sum {self.sum:.6f}",
                f"{name}_count{{{labels}}} {self.count}" if labels else f"{name}_count {self.count}"]
        return out


class Metrics:
    """What ``GET /metrics`` shows: requests and errors, latency, batch sizes, decisions by tier, abstains, reloads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests = {}      # (path, status) -> count
        self.decisions = {}     # tier -> count
        self.abstains = 0
        self.reloads = {"ok": 0, "refused": 0}
        self.latency = _Histogram(LATENCY_BUCKETS)
        self.batch_messages = _Histogram(BATCH_BUCKETS)

    def request(self, path, status, seconds):
        with self._lock:
            self.requests[(path, status)] = self.requests.get((path, status), 0) + 1
            self.latency.observe(seconds)

    def batch(self, decisions):
        """One encoder batch of the micro-batcher: its size, and its decisions."""
        with self._lock:
            self.batch_messages.observe(len(decisions))
        self.count(decisions)

    def count(self, decisions):
        """Decisions by tier and abstains."""
        with self._lock:
            for d in decisions:
                self.decisions[d.tier] = self.decisions.get(d.tier, 0) + 1
                self.abstains += bool(d.abstain)

    def reload(self, ok):
        with self._lock:
            self.reloads["ok" if ok else "refused"] += 1

    def render(self, *, rows, backend) -> str:
        with self._lock:
            out = ["# HELP workbench_requests_total HTTP requests by path and status.",
                   "# TYPE workbench_requests_total counter"]
            out += [f'workbench_requests_total{{path="{p}",status="{s}"}} {n}'
                    for (p, s), n in sorted(self.requests.items())]
            errors = sum(n for (_, s), n in self.requests.items() if s >= 400)
            out += ["# HELP workbench_errors_total Requests answered with a 4xx or 5xx status.",
                    "# TYPE workbench_errors_total counter", f"workbench_errors_total {errors}",
                    "# HELP workbench_request_duration_seconds Time from request to response.",
                    "# TYPE workbench_request_duration_seconds histogram",
                    *self.latency.lines("workbench_request_duration_seconds"),
                    "# HELP workbench_batch_messages Messages per encoder call (micro-batch size).",
                    "# TYPE workbench_batch_messages histogram",
                    *self.batch_messages.lines("workbench_batch_messages"),
                    "# HELP workbench_decisions_total Routing decisions by tier.",
                    "# TYPE workbench_decisions_total counter"]
            out += [f'workbench_decisions_total{{tier="{t}"}} {n}' for t, n in sorted(self.decisions.items())]
            out += ["# HELP workbench_abstains_total Decisions where the pool's policy abstained.",
                    "# TYPE workbench_abstains_total counter", f"workbench_abstains_total {self.abstains}",
                    "# HELP workbench_pool_reloads_total Pool replacements loaded (ok) or refused.",
                    "# TYPE workbench_pool_reloads_total counter"]
            out += [f'workbench_pool_reloads_total{{result="{k}"}} {v}' for k, v in self.reloads.items()]
            out += ["# HELP workbench_pool_rows Rows of the pool being served.", "# TYPE workbench_pool_rows gauge",
                    f'workbench_pool_rows{{backend="{backend}"}} {rows}',
                    "# HELP workbench_uptime_seconds Seconds since the service started.",
                    "# TYPE workbench_uptime_seconds gauge", f"workbench_uptime_seconds {time.time() - self.started:.3f}"]
        return "\n".join(out) + "\n"
