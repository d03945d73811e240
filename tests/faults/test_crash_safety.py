"""Crash safety: kill -9 the worker at 20 random moments while it projects a stream of
orders, restarting it each time; the final documents equal a from-scratch rebuild, and
revenue, unitsSold and stock are never double-counted. Along the way `projections status`
tells the operator the truth: not started, stopped / catching up with a backlog, live.

A batch's documents and checkpoint commit in one MongoDB transaction, so a process killed
anywhere leaves the whole batch or none of it; the restarted worker takes the dead one's
leases over once they expire (PROJECTION_LEASE_TTL_MS keeps that short here), and ends
the transaction a worker killed mid-batch left open, instead of waiting out MongoDB's
transactionLifetimeLimitSeconds (60 s) behind its locks.
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo.errors import PyMongoError
from redis.asyncio.client import PubSub
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.documents import SALES_TOTALS, SALES_TOTALS_ID
from reads.projection_state import STATE, ProjectionStatus
from tests.faults.shop import Shop, random_lines, shop_for
from tests.pipeline import ALL, Pipeline
from workers.notifications import projections_channel
from workers.projectors import PROJECTORS
from workers.rebuild import rebuild
from workers.state import ensure_state, load_state
from workers.status import projection_statuses
from writes.commands import Actor
from writes.nudge import wake_channel

KILLS = 20
LEASE_TTL_MS = 1500  # the default 5 s would make every restart wait for the dead lease
WORKER_ENV = {"PROJECTION_LEASE_TTL_MS": str(LEASE_TTL_MS), "PROJECTION_BATCH_SIZE": "100"}
BACKLOG_ORDERS = 1200
KILL_WITHIN_S = 0.6  # after the restarted worker's first batch
Document = dict[str, Any]


@dataclass
class Catalog:
    products: list[str]
    customers: list[Actor]


async def log_head(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT coalesce(max(position), 0) FROM event_log")))


async def events_above(engine: AsyncEngine, position: int) -> int:
    async with engine.connect() as conn:
        query = text("SELECT count(*) FROM event_log WHERE position > :p")
        return int(await conn.scalar(query, {"p": position}))


async def orders(shop: Shop, catalog: Catalog, rng: random.Random, count: int) -> None:
    """`count` orders of 1-4 lines; about one in five is cancelled, one in ten shipped."""
    for _ in range(count):
        customer = rng.choice(catalog.customers)
        placed = await shop.place(customer, random_lines(rng, catalog.products, most=4))
        fate = rng.random()
        if fate < 0.2:
            await shop.cancel(customer, str(placed.value.id))
        elif fate < 0.3:
            await shop.ship(str(placed.value.id))


async def stream_orders(shop: Shop, catalog: Catalog, seed: int, stop: asyncio.Event) -> int:
    """Orders keep arriving while the worker is killed and restarted."""
    rng = random.Random(seed)
    placed = 0
    while not stop.is_set():
        await orders(shop, catalog, rng, 1)
        placed += 1
        await asyncio.sleep(0.02)  # pacing the load (about 40 orders/s), not waiting for it
    return placed


def worker_id_prefix(worker: asyncio.subprocess.Process) -> str:
    """workers.settings names a worker host:pid:random."""
    return f"{socket.gethostname()}:{worker.pid}:"


async def wait_for_progress(
    pipeline: Pipeline,
    worker: asyncio.subprocess.Process,
    before: dict[str, int],
    budget_s: float = 30,
    what: str = "",
) -> None:
    """Wait for batch notifications until `worker` owns every projection and moved each
    past its `before` position: the dead worker's leases passed on, all of them."""
    deadline = time.monotonic() + budget_s
    ours = worker_id_prefix(worker)
    async with pipeline.redis.pubsub() as pubsub:
        await pubsub.subscribe(projections_channel(pipeline.settings.redis_prefix))
        while True:
            advanced = [
                doc["_id"]
                async for doc in pipeline.db[STATE].find()
                if str(doc.get("owner")).startswith(ours)
                and doc["position"] > before.get(doc["_id"], 0)
            ]
            if sorted(advanced) == sorted(ALL):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                states = {doc["_id"]: doc async for doc in pipeline.db[STATE].find()}
                raise AssertionError(
                    f"{what}: {ours} made no progress past {before} in {budget_s} s: {states}"
                )
            await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 1.0))


async def next_commit(wakes: PubSub, engine: AsyncEngine) -> int:
    """Wait for the next commit's wake-up (the stream commits about 40 times a second);
    the log's head just after it."""
    while await wakes.get_message(ignore_subscribe_messages=True, timeout=0):
        pass  # wake-ups from before now
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if await wakes.get_message(ignore_subscribe_messages=True, timeout=1.0):
            break
    return await log_head(engine)


async def cli_status(pipeline: Pipeline) -> dict[str, list[str]]:
    """`shop projections status` as a subprocess: its rows by projection name."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "projections", "status",
        env=pipeline.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    header, *rows = out.decode().splitlines()
    assert header.split()[:6] == ["projection", "position", "head", "lag", "lag", "ms"], header
    return {row.split()[0]: row.split()[1:6] for row in rows}


def as_cli_row(status: ProjectionStatus) -> list[str]:
    """position, head, lag, lag ms, state: lag ms is a moving figure, so only its sign."""
    return [str(status.position), str(status.head_position), str(status.lag_events),
            "0" if status.lag_ms == 0 else ">0", status.state]  # fmt: skip


async def assert_cli_agrees(pipeline: Pipeline, statuses: list[ProjectionStatus]) -> None:
    printed = await cli_status(pipeline)
    assert sorted(printed) == sorted(PROJECTORS)
    for status in statuses:
        row = printed[status.name]
        row[3] = "0" if row[3] == "0" else ">0"
        assert row == as_cli_row(status), (row, status)


async def snapshot(pipeline: Pipeline, name: str) -> dict[str, list[Document]]:
    """A projection's documents by logical collection, `position` aside, in _id order."""
    state = await load_state(pipeline.db, name)
    found = {}
    for logical, physical in state.collections.items():
        docs = await pipeline.db[physical].find({}, {"position": 0}).sort("_id").to_list()
        found[logical] = docs
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)  # 21 `shop worker` start-ups, ~3 s each on an idle machine
async def test_kill_9_at_random_moments_never_double_counts(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    print(f"seed {seed}")  # shown with a failure
    async with shop_for(pipeline.settings, pipeline.settings.redis_prefix, 6) as shop:
        catalog = Catalog(
            products=list(
                await asyncio.gather(
                    *(shop.product(stock=10_000_000, price_cents=199 + 50 * i) for i in range(16))
                )
            ),
            customers=list(await asyncio.gather(*(shop.customer() for _ in range(6)))),
        )
        await asyncio.gather(
            *(
                orders(shop, catalog, random.Random(rng.random()), BACKLOG_ORDERS // 4)
                for _ in range(4)
            )
        )

        # Nothing projected yet: not started, and the whole log is the backlog.
        head = await log_head(engine)
        for status in await projection_statuses(engine, pipeline.db):
            assert (status.state, status.position, status.head_position) == ("not_started", 0, head)
            assert status.lag_events == await events_above(engine, 0) > BACKLOG_ORDERS
            assert status.lag_ms > 0

        # kill -9 at random moments while the worker projects the backlog and the orders
        # that keep coming in; restart it each time.
        stop = asyncio.Event()
        async with pipeline.redis.pubsub() as wakes:
            await wakes.subscribe(wake_channel(pipeline.settings.redis_prefix))
            stream = asyncio.create_task(stream_orders(shop, catalog, rng.randrange(1 << 32), stop))
            behind_at_kill = 0
            try:
                for kill in range(KILLS):
                    before = await pipeline.positions()
                    worker = await pipeline.start_worker(extra_env=WORKER_ENV)
                    # The dead worker's leases passed on: the new one owns and advances every
                    # projection.
                    await wait_for_progress(pipeline, worker, before, what=f"restart {kill + 1}")
                    await asyncio.sleep(rng.uniform(0, KILL_WITHIN_S))  # picks the moment to kill
                    # ...then the next commit's wake-up: the worker is starting a batch, not idle
                    # (a worker that keeps up with the stream mostly is).
                    head = await next_commit(wakes, engine)
                    await pipeline.kill(worker)  # SIGKILL
                    behind_at_kill += min((await pipeline.positions()).values()) < head
                    assert worker.returncode == -signal.SIGKILL

                    # No worker runs now: status shows the backlog, and the dead worker's lease
                    # until it expires (catching_up), then stopped; never live while behind.
                    for status in await projection_statuses(engine, pipeline.db):
                        assert status.position <= status.head_position
                        if status.position < status.head_position:
                            assert status.lag_events > 0, status
                            assert status.lag_ms > 0, status
                            assert status.state in {"catching_up", "stopped"}, status
            finally:
                # However the loop ended: the stream writes into the run's shared event log,
                # so it must not outlive this test.
                stop.set()
                streamed = await stream
        head = await log_head(engine)

        assert streamed > 50
        assert behind_at_kill >= KILLS // 2, behind_at_kill

        # The last restart finishes the job: live, owned by it, nothing behind.
        worker = await pipeline.start_worker(extra_env=WORKER_ENV)
        await pipeline.wait_until_projected(head, budget_s=120)
        for status in await projection_statuses(engine, pipeline.db):
            assert (status.state, status.lag_events, status.lag_ms) == ("live", 0, 0), status
            assert status.position == status.head_position == head, status
            assert str(status.owner).startswith(worker_id_prefix(worker)), status

        # Nothing counted twice: verify, and the totals against plain SQL over the write store.
        assert await pipeline.verify(engine) == {name: [] for name in ALL}
        await assert_counted_once(engine, pipeline)

        # A clean stop releases the leases: stopped, nothing behind.
        await pipeline.kill(worker, signal.SIGTERM)
        assert worker.returncode == 0
        for status in await projection_statuses(engine, pipeline.db):
            assert (status.state, status.lag_events, status.owner) == ("stopped", 0, None)

        # The documents equal a from-scratch rebuild of each projection, one that reads the
        # log in small pages and flushes its working set many times (reading documents
        # back from the new generation), as a rebuild of a large log does.
        for name in ALL:
            before_rebuild = await snapshot(pipeline, name)
            generation = (await load_state(pipeline.db, name)).generation
            result = await rebuild(
                engine, pipeline.mongo, pipeline.db, PROJECTORS[name], pipeline.redis,
                pipeline.settings.redis_prefix, batch_size=16, working_set_bytes=1,
                drop_grace_s=0,
            )  # fmt: skip
            assert (result.generation, result.position, result.parked) == (generation + 1, head, 0)
            assert await snapshot(pipeline, name) == before_rebuild, name

        # Orders placed with no worker running: stopped, and the lag counts them exactly;
        # `shop projections status` prints the same.
        await orders(shop, catalog, rng, 3)
        statuses = await projection_statuses(engine, pipeline.db)
        for status in statuses:
            assert (status.state, status.position) == ("stopped", head), status
            assert status.head_position == await log_head(engine) > head
            assert status.lag_events == await events_above(engine, head) >= 3
            assert status.lag_ms > 0
        await assert_cli_agrees(pipeline, statuses)


async def test_a_transaction_a_dead_worker_left_open_does_not_stall_its_successor(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    """Deterministically, what a kill -9 between a batch's first write and its commit leaves:
    an open transaction holding the checkpoint and the sales totals, owned by a worker whose
    lease expired. MongoDB would keep it (and its locks) for 60 s."""
    async with shop_for(pipeline.settings, pipeline.settings.redis_prefix, 2) as shop:
        catalog = Catalog([await shop.product(1000, 250)], [await shop.customer()])
        await orders(shop, catalog, random.Random(7), 5)
    head = await log_head(engine)

    dead = pipeline.mongo.start_session()
    sales = PROJECTORS["sales"]
    await ensure_state(pipeline.db, sales)
    await pipeline.db[STATE].update_one(
        {"_id": sales.name},
        [{"$set": {"owner": "dead-host:1:000000", "owner_session": dead.session_id["id"],
                   "lease_until": {"$subtract": ["$$NOW", 1000]}}}],
    )  # fmt: skip
    await dead.start_transaction()
    await pipeline.db[SALES_TOTALS].update_one(
        {"_id": SALES_TOTALS_ID}, {"$inc": {"revenue_cents": 1}}, upsert=True, session=dead
    )
    await pipeline.db[STATE].update_one(
        {"_id": sales.name}, {"$set": {"position": 1}}, session=dead
    )

    worker = await pipeline.start_worker(extra_env=WORKER_ENV)
    await pipeline.wait_until_projected(head, budget_s=20)

    state = await load_state(pipeline.db, sales.name)
    assert state.owner is not None
    assert state.owner.startswith(worker_id_prefix(worker))
    with pytest.raises(PyMongoError):  # the successor ended it: nothing of it commits
        await dead.commit_transaction()
    await dead.end_session()
    assert await pipeline.verify(engine, ["sales"]) == {"sales": []}


async def assert_counted_once(engine: AsyncEngine, pipeline: Pipeline) -> None:
    """Revenue, units sold and stock in MongoDB equal sums over the write store's rows."""
    async with engine.connect() as conn:
        revenue, live, cancelled = (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(total_cents) FILTER (WHERE status <> 'CANCELLED'), 0), "
                    "count(*) FILTER (WHERE status <> 'CANCELLED'), "
                    "count(*) FILTER (WHERE status = 'CANCELLED') FROM orders"
                )
            )
        ).one()
        sold = {
            row.product_id: (row.units, row.revenue)
            for row in await conn.execute(
                text(
                    "SELECT l.product_id::text AS product_id, sum(l.quantity) AS units, "
                    "sum(l.quantity * l.unit_price_cents) AS revenue "
                    "FROM order_lines l JOIN orders o ON o.id = l.order_id "
                    "WHERE o.status <> 'CANCELLED' GROUP BY l.product_id"
                )
            )
        }
        products = {
            row.id: (row.stock, row.units_sold, row.initial)
            for row in await conn.execute(
                text(
                    "SELECT p.id::text AS id, p.stock, p.units_sold, "
                    "(e.data->>'stock')::bigint AS initial FROM products p JOIN event_log e "
                    "ON e.stream_id = p.id AND e.type = 'ProductCreated'"
                )
            )
        }
        restocked: dict[str, int] = dict(
            (
                await conn.execute(
                    text(
                        "SELECT stream_id::text, sum((data->>'quantity')::bigint) FROM event_log "
                        "WHERE type = 'ProductRestocked' GROUP BY stream_id"
                    )
                )
            ).all()
        )

    totals = await pipeline.db["sales_totals"].find_one({"_id": SALES_TOTALS_ID})
    assert totals is not None
    assert (totals["revenue_cents"], totals["order_count"], totals["cancelled_count"]) == (
        revenue,
        live,
        cancelled,
    )
    projected = {doc["_id"]: doc async for doc in pipeline.db["products"].find()}
    by_product = {doc["_id"]: doc async for doc in pipeline.db["sales_products"].find()}
    assert set(projected) == set(products)
    for product_id, (stock, units_sold, initial) in products.items():
        units, cents = sold.get(product_id, (0, 0))
        doc = projected[product_id]
        assert (
            (doc["stock"], doc["units_sold"])
            == (stock, units_sold)
            == (
                initial + restocked.get(product_id, 0) - units,
                units,
            )
        ), product_id
        if product_id in by_product:
            assert (
                by_product[product_id]["units_sold"],
                by_product[product_id]["revenue_cents"],
            ) == (units, cents)
        else:
            assert units == 0
