"""Each projection's figures, read from both stores when /metrics is scraped.

The worker is not scraped (docs/decisions/0034-projection-metrics-at-scrape-time.md):
what it knows sits in MongoDB beside each checkpoint (lease, batch timings, rebuild
position, the last verify), and the lag comes from PostgreSQL at the moment of the
scrape, so it keeps growing while no worker runs. Every API process exports the same
figures; alert rules aggregate them with max().
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.core import (
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.projection_state import (
    STATE,
    STATES,
    WORKERS,
    describe,
    lease_live,
    parked_counts,
)
from workers.batch_timings import BatchHistogram, histogram
from workers.log_reader import backlog, lag_ms, log_head
from workers.projectors import PROJECTORS

Document = dict[str, Any]
# Workers not seen for this long are left out (each run of a worker has a new id).
FORGET_WORKERS_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class ProjectionFigures:
    name: str
    position: int
    lag_events: int
    lag_s: float
    parked: int
    state: str
    owner_live: bool
    rebuild_position: int | None
    batches: BatchHistogram
    verify_differences: int | None
    verified_at: datetime | None


@dataclass(frozen=True)
class Figures:
    head: int
    projections: list[ProjectionFigures]
    # Each recently seen worker and how long ago its last heartbeat was.
    heartbeat_ages_s: dict[str, float]
    live_workers: int


async def read_figures(
    engine: AsyncEngine, db: AsyncDatabase[Document], lease_ttl_ms: int
) -> Figures:
    """Figures for every projection the code knows, whether or not it ever ran."""
    head, _ = await log_head(engine)
    now = datetime.now(UTC)
    states = {doc["_id"]: doc async for doc in db[STATE].find()}
    parked = await parked_counts(db)
    projections = []
    for name in PROJECTORS:
        doc = states.get(name)
        position = int(doc["position"]) if doc else 0
        lag_events, oldest = await backlog(engine, position)
        parked_now = parked.get((name, doc["generation"]), 0) if doc else 0
        projections.append(_projection(name, doc, position, lag_events, oldest, parked_now, now))
    ages = {
        str(doc["_id"]): max(0.0, (now - doc["seen_at"]).total_seconds())
        async for doc in db[WORKERS].find({"seen_at": {"$gt": now - FORGET_WORKERS_AFTER}})
    }
    live = sum(1 for age in ages.values() if age * 1000 <= lease_ttl_ms)
    return Figures(head, projections, ages, live)


def _projection(
    name: str,
    doc: Document | None,
    position: int,
    lag_events: int,
    oldest: datetime | None,
    parked: int,
    now: datetime,
) -> ProjectionFigures:
    state = describe(doc, lag_events, parked, now)
    doc = doc or {}
    rebuilding = doc.get("rebuilding") or {}
    verified = doc.get("verified") or {}
    return ProjectionFigures(
        name=name,
        position=position,
        lag_events=lag_events,
        lag_s=lag_ms(oldest) / 1000,
        parked=parked,
        state=state,
        owner_live=lease_live(doc, now),
        rebuild_position=rebuilding.get("position", 0) if rebuilding else None,
        batches=histogram(doc),
        verify_differences=verified.get("differences"),
        verified_at=verified.get("at"),
    )


def families(figures: Figures) -> list[Metric]:
    """The figures as Prometheus metric families, labelled by projection (or worker)."""

    def gauge(name: str, documentation: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, documentation, labels=["projection"])

    position = gauge("shop_projection_position", "Event-log position the projection reached")
    lag_events = gauge("shop_projection_lag_events", "Events in the log not yet projected")
    lag_s = gauge("shop_projection_lag_seconds", "Age of the oldest event not yet projected")
    parked = gauge("shop_projection_parked_events", "Events parked in the live generation")
    owner = gauge("shop_projection_owner_live", "1 while a live worker holds the lease")
    rebuilding = gauge("shop_projection_rebuilding", "1 while a rebuild is under way")
    rebuilt_to = gauge("shop_projection_rebuild_position", "Position a running rebuild reached")
    differences = gauge(
        "shop_projection_verify_differences", "Differences the last `projections verify` found"
    )
    verified_at = gauge(
        "shop_projection_verify_timestamp_seconds", "When `projections verify` last ran"
    )
    state = GaugeMetricFamily(
        "shop_projection_state",
        "1 for the projection's current state",
        labels=["projection", "state"],
    )
    batches = HistogramMetricFamily(
        "shop_projection_batch_duration_seconds",
        "Duration of projection batches (read, project, commit)",
        labels=["projection"],
    )
    for p in figures.projections:
        label = [p.name]
        position.add_metric(label, p.position)
        lag_events.add_metric(label, p.lag_events)
        lag_s.add_metric(label, p.lag_s)
        parked.add_metric(label, p.parked)
        owner.add_metric(label, 1 if p.owner_live else 0)
        rebuilding.add_metric(label, 0 if p.rebuild_position is None else 1)
        if p.rebuild_position is not None:
            rebuilt_to.add_metric(label, p.rebuild_position)
        if p.verify_differences is not None:
            differences.add_metric(label, p.verify_differences)
        if p.verified_at is not None:
            verified_at.add_metric(label, p.verified_at.timestamp())
        for name in STATES:
            state.add_metric([p.name, name], 1 if p.state == name else 0)
        buckets = [(_le(bound), count) for bound, count in p.batches.buckets]
        batches.add_metric(label, buckets, p.batches.total_s)
    head = GaugeMetricFamily("shop_event_log_head_position", "Highest event-log position")
    head.add_metric([], figures.head)
    live = GaugeMetricFamily(
        "shop_projection_workers_live", "Workers whose heartbeat is within the lease TTL"
    )
    live.add_metric([], figures.live_workers)
    ages = GaugeMetricFamily(
        "shop_worker_heartbeat_age_seconds",
        "Seconds since each recently seen worker's last heartbeat",
        labels=["worker"],
    )
    for worker, age in sorted(figures.heartbeat_ages_s.items()):
        ages.add_metric([worker], age)
    return [position, lag_events, lag_s, parked, owner, rebuilding, rebuilt_to, differences,
            verified_at, state, batches, head, live, ages]  # fmt: skip


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def figures_up(read: bool) -> Metric:
    """1 when this scrape read the projections' figures, 0 when the stores did not answer
    in time (the API logs why); the projection metrics are absent then."""
    up = GaugeMetricFamily(
        "shop_projection_figures_up", "1 when this scrape read the projections' figures"
    )
    up.add_metric([], 1 if read else 0)
    return up
