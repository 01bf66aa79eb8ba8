"""``/metrics`` in the Prometheus text format, one registry per app (per process:
with several workers or replicas, Prometheus scrapes and sums each)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gatekit._models import Decision, Status
from gatekit.engine import Engine

logger = logging.getLogger("gatekit.server")

# From a memory-store decision (~0.1 ms) to a reviewer-scale stall.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._decisions = Counter(
            "gatekit_decisions",
            "Decisions made, by status.",
            ["status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "gatekit_decision_seconds",
            "Time to decide, from request parsed to decision committed.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._store_errors = Counter(
            "gatekit_store_errors", "Requests that failed in the store.", registry=self.registry
        )
        self.registry.register(_PendingReviews(engine, self._store_errors.inc))

    def decided(self, decision: Decision, seconds: float) -> None:
        self._decisions.labels(decision.status.value).inc()
        self._latency.observe(seconds)

    def failed(self, error: BaseException) -> None:
        """Count an unexpected failure if it came from the database driver."""
        module = type(error).__module__
        if module.startswith(("sqlite3", "psycopg")):
            self._store_errors.inc()


class _PendingReviews(Collector):
    """Read from the store at scrape time, so every replica reports the shared count.
    Without a store the gauge is left out and the failure counted: the scrape itself
    must still answer, as the store errors are what it should show then."""

    def __init__(self, engine: Engine, store_failed: Callable[[], None]) -> None:
        self._engine = engine
        self._store_failed = store_failed

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            pending = len(self._engine.store.list(Status.PENDING_REVIEW, limit=10_000))
        except Exception as exc:
            logger.warning("gatekit server: cannot count the pending reviews: %s", exc)
            self._store_failed()
            return
        yield GaugeMetricFamily(
            "gatekit_pending_reviews", "Actions waiting for a reviewer.", value=pending
        )


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics
