"""What ``GET /metrics`` shows, on ``prometheus-client``: the router's and the gateway's counters and histograms.

With several worker processes (``workbench serve --workers N``), the
service sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, every
process writes its values there, and ``/metrics`` in any worker adds them up
(prometheus-client's multiprocess mode).
"""
from __future__ import annotations

import os
import time

__all__ = ["Metrics", "LATENCY_BUCKETS", "BATCH_BUCKETS", "ROUTING_BUCKETS"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUTING_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _multiprocess():
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """The service's metrics, in a registry of their own (one per app).

    Router: requests by path and status, errors, latency, batch sizes,
    decisions by tier, abstains, pool reloads. Gateway: requests by client,
    routing and upstream latency, tokens, cost (and the cost of the same
    tokens on the ``baseline`` tier: the all-strong bill), decisions by tier
    and category, fallbacks, abstains, stream errors, failures, decision-log
    records and write errors.
    """

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()
        self.started = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def counter(name, doc, labels=()):
            return Counter(name, doc, labels, registry=r)

        self.requests = counter("workbench_requests", "HTTP requests by path and status.", ("path", "status"))
        self.errors = counter("workbench_errors", "Requests answered with a 4xx or 5xx status.")
        self.disconnects = counter("workbench_client_disconnects", "Requests whose client went away before the "
                                   "answer (counted under status 499, not as errors).", ("path",))
        self.latency = Histogram("workbench_request_duration_seconds", "Time from request to response.",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_messages = Histogram("workbench_batch_messages", "Messages per encoder call (micro-batch size).",
                                        buckets=BATCH_BUCKETS, registry=r)
        self.decisions = counter("workbench_decisions", "Routing decisions by tier.", ("tier",))
        self.abstains = counter("workbench_abstains", "Decisions where the pool's policy abstained.")
        self.reloads = counter("workbench_pool_reloads", "Pool replacements loaded (ok) or refused.", ("result",))
        for result in ("ok", "refused"):
            self.reloads.labels(result)
        self.rows = Gauge("workbench_pool_rows", "Rows of the pool being served.", ("backend",), registry=r,
                          multiprocess_mode="livemax")
        self.uptime = Gauge("workbench_uptime_seconds", "Seconds since the service started.", registry=r,
                            multiprocess_mode="livemax")
        self._gateway(counter)

    def _gateway(self, counter):
        r = self.registry
        from prometheus_client import Histogram

        self.gw_requests = counter("workbench_gateway_requests", "Chat-completion requests by client, kind "
                                   "(routed or passthrough) and final status.", ("client", "kind", "status"))
        self.routing = Histogram("workbench_routing_seconds", "Time to route one chat request (encoder included).",
                                 buckets=ROUTING_BUCKETS, registry=r)
        self.upstream = Histogram("workbench_upstream_seconds", "Time from forwarding to the upstream's last byte.",
                                  ("tier",), buckets=UPSTREAM_BUCKETS, registry=r)
        self.tokens = counter("workbench_tokens", "Tokens reported by the upstreams.", ("tier", "kind"))
        self.cost = counter("workbench_cost_dollars", "Cost of the answered requests at each tier's prices.", ("tier",))
        self.baseline_cost = counter("workbench_baseline_cost_dollars",
                                     "The same tokens at the prices of the most expensive tier (all-strong).")
        self.gw_decisions = counter("workbench_gateway_decisions", "Routed requests by decided tier and category.",
                                    ("tier", "category"))
        self.fallbacks = counter("workbench_fallbacks", "Requests sent down a fallback chain.", ("from", "to", "reason"))
        self.gw_abstains = counter("workbench_gateway_abstains", "Routed requests the pool abstained on (sent to the "
                                   "abstain tier).", ("tier",))
        self.stream_errors = counter("workbench_stream_errors", "Streams that failed after their first chunk.",
                                     ("tier", "reason"))
        self.failures = counter("workbench_upstream_failures", "Requests no upstream answered (503).", ("tier", "reason"))
        self.log_records = counter("workbench_decision_log_records", "Decision records written.")
        self.log_errors = counter("workbench_decision_log_errors", "Decision records lost to a write error.")
        self.feedback = counter("workbench_feedback", "Feedback accepted on POST /v1/feedback, by rating.", ("rating",))
        for rating in ("up", "down"):
            self.feedback.labels(rating)

    # -- router ---------------------------------------------------------------------------------------
    def request(self, path, status, seconds):
        self.requests.labels(path, str(status)).inc()
        if status >= 400 and status != 499:  # a client that went away is a disconnect, not an error
            self.errors.inc()
        self.latency.observe(seconds)

    def batch(self, decisions):
        """One encoder batch of the micro-batcher: its size, and its decisions."""
        self.batch_messages.observe(len(decisions))
        self.count(decisions)

    def count(self, decisions):
        """Decisions by tier and abstains."""
        for d in decisions:
            self.decisions.labels(d.tier).inc()
            if d.abstain:
                self.abstains.inc()

    def reload(self, ok):
        self.reloads.labels("ok" if ok else "refused").inc()

    # -- gateway --------------------------------------------------------------------------------------
    def fallback(self, source, target, reason):
        self.fallbacks.labels(source, target, reason).inc()

    def answered(self, upstream, *, prompt_tokens, completion_tokens, seconds, baseline):
        """One upstream answer: its latency, tokens and cost (and the cost on ``baseline``, an Upstream)."""
        self.upstream.labels(upstream.tier).observe(seconds)
        self.tokens.labels(upstream.tier, "prompt").inc(prompt_tokens or 0)
        self.tokens.labels(upstream.tier, "completion").inc(completion_tokens or 0)
        self.cost.labels(upstream.tier).inc(upstream.cost(prompt_tokens, completion_tokens))
        self.baseline_cost.inc(baseline.cost(prompt_tokens, completion_tokens))

    def render(self, *, rows, backend) -> bytes:
        """The exposition text (all worker processes' values in multiprocess mode)."""
        from prometheus_client import CollectorRegistry, generate_latest

        self.rows.labels(backend).set(rows)
        self.uptime.set(time.time() - self.started)
        if not _multiprocess():
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
