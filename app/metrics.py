"""/metrics in Prometheus' text format: the API's own counters and each projection's figures.

The API's figures (operations, latency, errors, consistency outcomes, subscriptions) are
counted by schema.observe's extension, once per operation. With PROMETHEUS_MULTIPROC_DIR
set (several API processes on one host), prometheus-client keeps them in files there and
/metrics adds up every process's. The projections' figures are read from the stores at
scrape time (app/projection_figures.py), each scrape bounded by the readiness timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.projection_figures import families, figures_up, read_figures
from schema.observe import ANONYMOUS, INVALID, OperationReport

log = logging.getLogger(__name__)

OTHER = "(other)"
MAX_NAME_LENGTH = 64
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """The API process's own metrics; an OperationObserver for build_schema."""

    def __init__(self, max_operation_names: int) -> None:
        self.registry = CollectorRegistry()
        self._max_names = max_operation_names
        self._names: set[str] = {ANONYMOUS, INVALID, OTHER}
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.requests = Counter(
            "shop_graphql_requests",
            "GraphQL operations by operation name, kind and outcome (ok or error)",
            ["operation", "kind", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shop_graphql_request_duration_seconds",
            "Time from parsing to the result of queries and mutations",
            ["operation", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "shop_graphql_errors",
            "Top-level GraphQL errors by extensions.code",
            ["code"],
            registry=self.registry,
        )
        self.consistency = Counter(
            "shop_consistency_reads",
            "Operations sent with a consistency token, by how their reads were served: "
            "projection (fresh at once), waited (fresh after a wait), write_store (fallback)",
            ["served_from"],
            registry=self.registry,
        )
        self.subscriptions = Gauge(
            "shop_graphql_subscriptions_open",
            "Subscriptions running now",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        # Beside the subscriptions: a count that stays up once they end is a leaked
        # listener (it holds the process's Redis subscription open).
        self.notification_listeners = Gauge(
            "shop_notification_listeners_open",
            "Listeners on the projection notifications now: subscriptions and "
            "read-your-writes waits",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

        self.compiled = Counter(
            "shop_graphql_compiled_operations",
            "Operations answered by a compiled plan (schema/compiled/), a part of "
            "shop_graphql_requests: the rest ran through strawberry",
            registry=self.registry,
        )

    def operation_finished(self, report: OperationReport) -> None:
        outcome = "error" if report.error_codes else "ok"
        key = (report.name, report.kind, outcome)
        children = self._children.get(key)
        if children is None:  # labels() costs microseconds per call: once per label set
            operation = self._label(report.name)
            children = (
                self.requests.labels(operation, report.kind, outcome),
                self.latency.labels(operation, report.kind),
            )
            if operation != OTHER:  # past the bound, names are not remembered either
                self._children[key] = children
        requests, latency = children
        requests.inc()
        if report.kind != "subscription":  # a subscription's duration is its lifetime
            latency.observe(report.seconds)
        for code in report.error_codes:
            self.errors.labels(code).inc()
        if report.consistency is not None:
            self.consistency.labels(report.consistency).inc()
        if report.compiled:
            self.compiled.inc()

    def subscription_opened(self) -> None:
        self.subscriptions.inc()

    def subscription_closed(self) -> None:
        self.subscriptions.dec()

    def notification_listeners_changed(self, count: int) -> None:
        """The projection hub's listener count (reads.hub.ProjectionHub calls this)."""
        self.notification_listeners.set(count)

    def _label(self, name: str) -> str:
        """Clients choose operation names: past a bound, new ones share one label."""
        if name in self._names:
            return name
        if len(self._names) >= self._max_names or len(name) > MAX_NAME_LENGTH:
            return OTHER
        self._names.add(name)
        return name

    def own_families(self) -> Collector:
        """This process's metrics, or every API process's when they share a multiproc dir."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return self.registry
        combined = CollectorRegistry()
        MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        return combined


class _Snapshot:
    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def metrics_route(metrics: ApiMetrics) -> Route:
    async def endpoint(request: Request) -> Response:
        body = generate_latest(metrics.own_families())
        probes = getattr(request.app.state, "probes", None)
        if probes is not None:  # None until the lifespan has built the clients
            try:
                async with asyncio.timeout(probes.timeout_s):
                    figures = await read_figures(probes.engine, probes.db, probes.lease_ttl_ms)
                projection_metrics = [figures_up(True), *families(figures)]
            except Exception as exc:  # an outage must not break the API's own metrics
                log.warning("projection figures not read for /metrics: %s", exc)
                projection_metrics = [figures_up(False)]
            body += generate_latest(_Snapshot(projection_metrics))
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return Route("/metrics", endpoint, methods=["GET"])
