"""Prometheus metrics of one server: requests, latency, batches, queue depth and tokens, per model.

Requests, latency, inputs and tokens are also per route. Requests that no model answered (probes,
refusals, an unknown model) have ``model=""``: the label takes served models' names only, never what a
client sent.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from edgesbert.serve.batching import BatchStats
from edgesbert.serve.logs import RequestRecord

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384, 65536)


class Metrics:
    """The server's metrics, in a registry of their own (several servers in one process stay apart)."""

    def __init__(self) -> None:
        """Create every metric at zero."""
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "edgesbert_requests", "HTTP requests answered", ["model", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "edgesbert_request_duration_seconds", "Time to answer a request", ["model", "route"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.request_inputs = Counter(
            "edgesbert_request_inputs", "Texts or pairs in answered requests", ["model", "route"], registry=r
        )
        self.truncated = Counter(
            "edgesbert_truncated_inputs",
            "Inputs longer than the model takes, truncated",
            ["model", "route"],
            registry=r,
        )
        self.request_tokens = Counter(
            "edgesbert_request_tokens",
            "Tokens in answered requests (after truncation, as in usage)",
            ["model", "route"],
            registry=r,
        )
        self.in_flight = Gauge(
            "edgesbert_requests_in_flight",
            "Requests being answered now (probes and metrics aside)",
            registry=r,
        )
        self.queue_depth = Gauge(
            "edgesbert_queue_depth", "Requests waiting for a batch, by model", ["model"], registry=r
        )
        self.batch_requests = Histogram(
            "edgesbert_batch_requests", "Requests merged into one batch", ["model"],
            buckets=_SIZE_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "edgesbert_batch_size",
            "Texts or pairs in a batch",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_tokens = Histogram(
            "edgesbert_batch_tokens", "Tokens in one batch", ["model"], buckets=_TOKEN_BUCKETS, registry=r
        )
        self.inference = Histogram(
            "edgesbert_batch_duration_seconds", "Time to run one batch", ["model"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter("edgesbert_tokens", "Tokens run through the model", ["model"], registry=r)

    def request(self, route: str, status: int, seconds: float, record: RequestRecord) -> None:
        """Record one answered request to ``route``, and what it used (``record``) if it succeeded."""
        model = record.model
        self.requests.labels(model, route, str(status)).inc()
        self.latency.labels(model, route).observe(seconds)
        if model and status < 400:
            self.truncated.labels(model, route).inc(record.truncated)
            self.request_inputs.labels(model, route).inc(record.inputs)
            self.request_tokens.labels(model, route).inc(record.tokens)

    def batch(self, model: str, stats: BatchStats) -> None:
        """Record one batch of ``model``."""
        self.batch_requests.labels(model).observe(stats.requests)
        self.batch_size.labels(model).observe(stats.items)
        self.batch_tokens.labels(model).observe(stats.tokens)
        self.inference.labels(model).observe(stats.seconds)
        self.tokens.labels(model).inc(stats.tokens)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
