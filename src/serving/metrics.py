"""Request counts and latencies in Prometheus' text format, one registry per app (no global state).

Requests are labelled by their route template (``/v1/sessions/{session_id}/feedback``), never the
raw path, so session ids cannot grow the number of series.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """The service's counters.

    :param sessions: reads the number of live sessions when metrics are collected.
    :param ended: reads ``(expired, evicted)`` session counts so far.
    """

    def __init__(self, sessions: Callable[[], int], ended: Callable[[], tuple[int, int]]):
        self.registry = CollectorRegistry()
        self.requests = Counter("recenv_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("recenv_request_seconds", "Request latency by route", ["route", "method"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        live = Gauge("recenv_sessions", "Live sessions in the store", registry=self.registry)
        live.set_function(lambda: float(sessions()))
        expired = Gauge("recenv_sessions_expired", "Sessions expired so far (idle timeout)", registry=self.registry)
        expired.set_function(lambda: float(ended()[0]))
        evicted = Gauge("recenv_sessions_evicted", "Sessions evicted so far (store full)", registry=self.registry)
        evicted.set_function(lambda: float(ended()[1]))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
