"""/healthz, /readyz and /metrics over real HTTP, as a load balancer and Prometheus see them.

/metrics is parsed with prometheus-client's own parser. The projection figures come
from the stores at scrape time, so the lag keeps growing while no worker runs and falls
back to 0 once one catches up; the readiness tests stop a worker or park an event and
read which check failed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.asgi import create_app
from app.settings import PROJECT_ROOT, Settings
from reads.hub import ProjectionHub
from reads.projection_state import DEAD_LETTERS, STATE
from tests.conftest import PASSWORD, Api
from tests.pipeline import ALL, Pipeline, Writer, isolated_pipeline, shop
from tests.support import (
    SIGN_UP,
    WAIT_S,
    GraphQLClient,
    Scrape,
    free_port,
    graphql_ws,
    readyz,
    scrape_metrics,
    serving,
    unique,
    until,
)
from workers.policy import dead_letter
from workers.projection import StoredEvent, UndecodableEvent

CHECKS = {"postgres", "mongodb", "redis", "projections"}
ALERTS = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml"
ME = "query ObservedMe { me { id } }"


@asynccontextmanager
async def app_on(pipeline: Pipeline, **overrides: Any) -> AsyncIterator[GraphQLClient]:
    """An API of its own on the pipeline's read model (no worker unless the test starts one)."""
    own = pipeline.settings.model_copy(update={"port": free_port(), **overrides})
    async with serving(create_app(own), own.port) as client:
        yield client


async def test_healthz_and_readyz_report_every_check(api: Api, read_side: Pipeline) -> None:
    http = api.client.http
    health = await http.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})

    status, body = await readyz(http)
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == CHECKS
    assert all(check["ok"] and check["detail"] for check in body["checks"].values()), body


async def test_metrics_count_operations_errors_and_open_subscriptions_and_listeners(
    api: Api,
) -> None:
    http = api.client.http
    before = await scrape_metrics(http)
    await api.client.gql("query ObservedProducts { products(first: 1) { edges { node { id } } } }")
    await api.client.gql("{ products(first: ")  # does not parse
    await api.client.gql("query ObservedTypo { nope }")  # does not validate
    after = await scrape_metrics(http)

    def grew(name: str, **labels: str) -> float:
        return after.total(name, **labels) - before.total(name, **labels)

    ok = {"operation": "ObservedProducts", "kind": "query"}
    assert grew("shop_graphql_requests_total", **ok, outcome="ok") == 1
    assert grew("shop_graphql_request_duration_seconds_count", **ok) == 1
    assert grew("shop_graphql_requests_total", operation="(invalid)", outcome="error") == 2
    assert grew("shop_graphql_errors_total", code="GRAPHQL_PARSE_FAILED") == 1
    assert grew("shop_graphql_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert grew("shop_graphql_requests_total", operation="ObservedTypo") == 0  # no such label

    async def open_subscriptions() -> float:
        return (await scrape_metrics(http)).total("shop_graphql_subscriptions_open")

    async def listeners() -> float:
        return (await scrape_metrics(http)).total("shop_notification_listeners_open")

    hub: ProjectionHub = api.app.state.dependencies.queries.hub
    idle = before.total("shop_graphql_subscriptions_open")
    async with graphql_ws(api.base_url, "graphql-transport-ws", {}) as ws:
        op_id = await ws.subscribe("subscription { productUpdated { id } }")
        await until(open_subscriptions, lambda n: n == idle + 1)
        # The subscription listens on the hub: the gauge follows the hub's own count.
        await until(listeners, lambda n: n == hub.listener_count >= 1)
        await ws.stop(op_id)
        await until(open_subscriptions, lambda n: n == idle)
        async with asyncio.timeout(WAIT_S):
            await hub.until_listener_count(0)
        assert await listeners() == 0


async def test_every_metric_the_alert_rules_use_is_exported(api: Api) -> None:
    scrape = await scrape_metrics(api.client.http)
    used = set(re.findall(r"\bshop_[a-z_]+", ALERTS.read_text()))
    assert used, "no shop_ metric in alerts.yml"
    missing = {name for name in used if name.removesuffix("_total") not in scrape.families}
    assert not missing, f"alerts.yml uses metrics /metrics does not declare: {missing}"


async def test_the_lag_gauge_tracks_a_stopped_worker(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with isolated_pipeline(settings) as pipeline, app_on(pipeline) as client:
        http = client.http
        assert pipeline.settings.redis_url is not None
        writer = Writer(engine, pipeline.settings.redis_url, pipeline.settings.redis_prefix)
        try:
            actor, product = await writer.sign_up(), await writer.product()
            stopped = await scrape_metrics(http)
            for _ in range(3):
                last = await writer.place(actor, product)
        finally:
            await writer.close()
        behind = await scrape_metrics(http)
        assert behind.total("shop_projection_figures_up") == 1
        assert behind.total("shop_projection_workers_live") == 0
        assert behind.total("shop_event_log_head_position") >= last.position
        for name in ALL:
            lag = stopped.total("shop_projection_lag_events", projection=name)
            assert lag > 0, name  # the run's log has events; no worker ever ran here
            assert behind.total("shop_projection_lag_events", projection=name) >= lag + 3
            assert behind.total("shop_projection_lag_seconds", projection=name) > 0
            assert behind.total("shop_projection_owner_live", projection=name) == 0
            assert behind.total("shop_projection_state", projection=name, state="not_started")

        # A read with a consistency token and no worker: answered from the write store.
        email = f"{unique('metrics')}@example.com"
        signed = await client.data(
            SIGN_UP, {"input": {"email": email, "name": "Mo Metrics", "password": PASSWORD}}
        )
        token, bearer = signed["signUp"]["consistencyToken"], signed["signUp"]["token"]
        headers = {"X-Consistency-Token": token}
        assert "errors" not in await client.gql(ME, token=bearer, headers=headers)
        fallback = await scrape_metrics(http)
        assert fallback.total("shop_consistency_reads_total", served_from="write_store") == 1

        await pipeline.start_worker()
        head = int((await scrape_metrics(http)).total("shop_event_log_head_position"))
        await pipeline.wait_until_projected(head)
        caught_up = await scrape_metrics(http)
        for name in ALL:
            assert caught_up.total("shop_projection_lag_events", projection=name) == 0, name
            assert caught_up.total("shop_projection_lag_seconds", projection=name) == 0, name
            assert caught_up.total("shop_projection_position", projection=name) == head, name
            assert caught_up.total("shop_projection_owner_live", projection=name) == 1, name
        assert caught_up.total("shop_projection_workers_live") == 1
        assert caught_up.has("shop_worker_heartbeat_age_seconds")

        # The same token again, the projection caught up: answered from the projection.
        assert "errors" not in await client.gql(ME, token=bearer, headers=headers)

        async def batches() -> Scrape:
            return await scrape_metrics(http)

        # The worker adds its batch timings to the state documents once a second.
        timed = await until(
            batches,
            lambda s: s.total("shop_projection_batch_duration_seconds_count", projection="orders"),
        )
        assert timed.total("shop_consistency_reads_total", served_from="projection") == 1
        assert timed.total("shop_consistency_reads_total", served_from="write_store") == 1

        # `shop projections verify` leaves its finding for the verify-differences alert.
        assert not timed.has("shop_projection_verify_timestamp_seconds")
        code, _, err = await shop(pipeline, "projections", "verify", "--all")
        assert code == 0, err
        verified = await scrape_metrics(http)
        for name in ALL:
            assert verified.total("shop_projection_verify_differences", projection=name) == 0
            assert verified.total("shop_projection_verify_timestamp_seconds", projection=name) > 0


async def test_readyz_names_a_stopped_or_parked_projection(settings: Settings) -> None:
    async with (
        isolated_pipeline(settings) as pipeline,
        app_on(pipeline, readiness_stopped_grace_s=0) as client,
    ):
        http = client.http
        status, body = await readyz(http)
        assert status == 503, body
        assert body["status"] == "not_ready"
        checks = body["checks"]
        assert [name for name in CHECKS if not checks[name]["ok"]] == ["projections"], body
        assert "orders stopped" in checks["projections"]["detail"], body

        worker = await pipeline.start_worker()
        await until(lambda: readyz(http), lambda answer: answer[0] == 200)

        # A parked event in the live generation (as the worker parks one).
        state = await pipeline.db[STATE].find_one({"_id": "orders"})
        assert state is not None
        now = datetime.now(UTC)
        poison = StoredEvent(
            position=10**12, stream_type="order", stream_id=unique("stream"), stream_version=1,
            event=UndecodableEvent("OrderPlaced", KeyError("sku")), recorded_at=now,
        )  # fmt: skip
        letter = dead_letter("orders", state["generation"], poison, "KeyError: 'sku'", now)
        await pipeline.db[DEAD_LETTERS].insert_one(letter)
        status, body = await readyz(http)
        assert status == 503, body
        assert body["checks"]["projections"]["detail"] == "orders parked: 1 parked events", body
        parked = await scrape_metrics(http)
        assert parked.total("shop_projection_parked_events", projection="orders") == 1
        assert parked.total("shop_projection_parked_events", projection="products") == 0

        # The worker killed: its leases expire, and /readyz says so.
        await pipeline.db[DEAD_LETTERS].delete_one({"_id": letter["_id"]})
        await pipeline.kill(worker)
        status, body = await until(lambda: readyz(http), lambda answer: answer[0] == 503)
        assert "stopped" in body["checks"]["projections"]["detail"], body
        dead = await scrape_metrics(http)
        assert dead.total("shop_projection_owner_live") == 0
