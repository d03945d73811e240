"""No skipped events: 16 concurrent writers for 10 s, some holding their transaction open
between the append and the commit, some rolling back after the append, while a worker
projects; afterwards every committed event is in MongoDB and `verify` finds no difference.

The dangerous window for gap-safety is "events appended, not committed, while later ones
commit": a reader that checkpoints past a position whose transaction commits later skips
it for good. The writers here open that window on purpose (DelayableSession) on the real
command path; the log must still be projected completely and exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.shop import Abandoned, CommitPlan, Shop, commit_plan, random_lines, shop_for
from tests.pipeline import Pipeline
from workers.notifications import projections_channel
from workers.status import projection_statuses
from writes.commands import Actor
from writes.errors import DomainError

WRITERS = 16
LOAD_S = 10.0
PRODUCTS = 12
CUSTOMERS = 4


@dataclass
class Tally:
    """What the writers did, from their side."""

    orders: dict[str, str] = field(default_factory=dict)  # committed order id -> last status
    abandoned_orders: set[str] = field(default_factory=set)  # placed, then rolled back
    abandoned_positions: set[int] = field(default_factory=set)
    held_positions: set[int] = field(default_factory=set)  # committed after being held open
    outcomes: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)


async def writer(
    shop: Shop, seed: int, customer: Actor, products: list[str], deadline: float, tally: Tally
) -> None:
    """Places, cancels and ships its own orders and restocks, each command ending as the
    dice say: committed at once, held open 10-120 ms after its append, or rolled back."""
    rng = random.Random(seed)
    mine: list[str] = []  # this writer's committed orders still PLACED
    while time.monotonic() < deadline:
        action = rng.choices(["place", "cancel", "ship", "restock"], [6, 2, 1, 1])[0]
        if action in {"cancel", "ship"} and not mine:
            action = "place"
        ending = rng.choices(["commit", "hold", "roll_back", "hold_roll_back"], [6, 2, 1, 1])[0]
        plan = CommitPlan(
            hold_s=rng.uniform(0.01, 0.12) if ending.startswith("hold") else 0.0,
            roll_back=ending.endswith("roll_back"),
        )
        token = commit_plan.set(plan)
        try:
            if action == "place":
                committed = await shop.place(customer, random_lines(rng, products))
                order_id = str(committed.value.id)
                tally.orders[order_id] = "PLACED"
                mine.append(order_id)
            elif action == "restock":
                await shop.restock(rng.choice(products), rng.randint(1, 5))
            else:
                order_id = mine[rng.randrange(len(mine))]
                if action == "cancel":
                    await shop.cancel(customer, order_id)
                    tally.orders[order_id] = "CANCELLED"
                else:
                    await shop.ship(order_id)
                    tally.orders[order_id] = "SHIPPED"
                mine.remove(order_id)
        except Abandoned as abandoned:
            tally.abandoned_positions.update(e.position for e in abandoned.appended)
            tally.abandoned_orders.update(
                e.data["order_id"] for e in abandoned.appended if e.type == "OrderPlaced"
            )
            tally.outcomes["rolled back"] += 1
        except DomainError as refused:  # e.g. stock ran out: refused before any append
            tally.refused[type(refused).__name__] += 1
        else:
            tally.outcomes["held, committed" if plan.hold_s else "committed"] += 1
            if plan.hold_s:
                tally.held_positions.update(e.position for e in plan.appended)
        finally:
            commit_plan.reset(token)


async def batches_until(pipeline: Pipeline, load: asyncio.Future[Any]) -> list[dict[str, Any]]:
    """The batch notifications the worker publishes while `load` runs (awaited here)."""
    batches = []
    async with pipeline.redis.pubsub() as pubsub:
        await pubsub.subscribe(projections_channel(pipeline.settings.redis_prefix))
        while not load.done():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                batches.append(orjson.loads(message["data"]))
    await load
    return batches


async def log_head(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT coalesce(max(position), 0) FROM event_log")))


async def test_concurrent_writers_with_held_and_rolled_back_commits_skip_nothing(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    async with shop_for(pipeline.settings, pipeline.settings.redis_prefix, WRITERS + 2) as shop:
        products = list(
            await asyncio.gather(
                *(shop.product(stock=1_000_000, price_cents=100 + 37 * i) for i in range(PRODUCTS))
            )
        )
        customers = list(await asyncio.gather(*(shop.customer() for _ in range(CUSTOMERS))))
        await pipeline.start_worker()
        start = await log_head(engine)
        # The isolated read side starts from an empty MongoDB over the run's whole log: let
        # it replay what earlier tests wrote first, so the load below measures progress
        # under load, not how long that backlog (which grows with test order) takes.
        await pipeline.wait_until_projected(start, budget_s=120)
        tally = Tally()
        deadline = time.monotonic() + LOAD_S
        load = asyncio.gather(
            *(
                writer(shop, seed, customers[seed % CUSTOMERS], products, deadline, tally)
                for seed in range(WRITERS)
            )
        )
        during_load = await batches_until(pipeline, load)
        head = await log_head(engine)

    await pipeline.wait_until_projected(head, budget_s=60)

    # The load did open the dangerous window, often, and the worker ran through it.
    assert tally.outcomes["committed"] >= 60, tally
    assert tally.outcomes["held, committed"] >= 20, tally
    assert tally.outcomes["rolled back"] >= 15, tally
    projected = Counter(b["projection"] for b in during_load if b["position"] > start)
    assert all(projected[name] >= 5 for name in ("orders", "products", "sales")), projected

    # Rolled-back appends left holes the worker passed; every held commit is in the log.
    async with engine.connect() as conn:
        logged = set(
            (
                await conn.scalars(
                    text("SELECT position FROM event_log WHERE position > :p"), {"p": start}
                )
            ).all()
        )
        events = (
            await conn.execute(
                text(
                    "SELECT position, stream_type, stream_id::text AS stream_id, "
                    "stream_version, type FROM event_log WHERE position > :p ORDER BY position"
                ),
                {"p": start},
            )
        ).all()
        order_status: dict[str, str] = dict(
            (
                await conn.execute(
                    text("SELECT id::text, status FROM orders WHERE id::text = ANY(:ids)"),
                    {"ids": list(tally.orders | dict.fromkeys(tally.abandoned_orders, ""))},
                )
            ).all()
        )
    # Each rolled-back command had appended (at least) one event before it rolled back.
    assert len(tally.abandoned_positions) >= tally.outcomes["rolled back"]
    assert tally.abandoned_positions.isdisjoint(logged)
    assert min(tally.abandoned_positions) < head  # a hole below the head: projected past
    assert tally.held_positions <= logged

    # Verify: every projection equals what the write store builds.
    assert await pipeline.verify(engine) == {
        name: [] for name in ("orders", "products", "customers", "sales")
    }

    # Every committed event is reflected: each stream's document carries the version of the
    # stream's last event (the `orders` summary and the `products` catalog both keep it).
    last_version: dict[tuple[str, str], int] = {}
    for event in events:
        last_version[(event.stream_type, event.stream_id)] = event.stream_version
    order_docs = {
        doc["_id"]: doc
        async for doc in pipeline.db["orders"].find(
            {"_id": {"$in": [sid for kind, sid in last_version if kind == "order"]}}
        )
    }
    product_docs = {
        doc["_id"]: doc
        async for doc in pipeline.db["products"].find(
            {"_id": {"$in": [sid for kind, sid in last_version if kind == "product"]}}
        )
    }
    kinds = Counter(kind for kind, _ in last_version)
    assert kinds["order"] == len(tally.orders), kinds
    assert kinds["product"] > 0, kinds
    for (kind, stream_id), version in last_version.items():
        docs = order_docs if kind == "order" else product_docs
        assert stream_id in docs, f"{kind} {stream_id} was never projected"
        assert docs[stream_id]["version"] == version, (kind, stream_id, docs[stream_id], version)

    # ... and each order the writers saw commit has the status they last committed, in
    # the write store and in MongoDB; the rolled-back ones exist in neither.
    for order_id, status in tally.orders.items():
        assert order_status[order_id] == status
        assert order_docs[order_id]["status"] == status
    assert not tally.abandoned_orders & set(order_status)
    assert (
        await pipeline.db["orders"].count_documents({"_id": {"$in": list(tally.abandoned_orders)}})
        == 0
    )

    # Caught up with a worker running: every projection is live, nothing behind.
    for projection in await projection_statuses(engine, pipeline.db):
        assert (projection.state, projection.lag_events, projection.lag_ms) == ("live", 0, 0), (
            projection
        )
        assert projection.position == projection.head_position == head, projection
