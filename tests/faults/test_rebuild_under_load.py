"""While a reader queries the orders collection in a loop and writers keep placing orders,
`shop projections rebuild orders` completes; the reader sees no error and no missing
document at any moment; the final state passes verify.

The reader resolves the live physical collection from `projection_state` on every
iteration, as the query side does, and checks that every order it has seen once (all
the orders projected before the rebuild included) is still there.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bootstrap import build_engine
from app.settings import Settings
from reads.projection_state import STATE, describe
from tests.conftest import own_stores
from tests.pipeline import (
    ALL,
    Pipeline,
    Writer,
    projections_status,
    shop,
    start_logged_worker,
)
from workers.notifications import projections_channel
from writes.commands import Actor

SEED_ORDERS = 160
SEED_WRITERS = 4


@dataclass
class Placed:
    """Orders the writers committed: (position, order id), in commit order."""

    orders: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Reader:
    """Reads the live orders collection in a loop, as a query would."""

    pipeline: Pipeline
    placed: Placed
    seen: set[str]
    iterations: int = 0
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    collections: list[str] = field(default_factory=list)
    # The state `shop projections status` gives orders (reads.projection_state.describe of
    # same document), on every read: the rebuilding phase can be short.
    states: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.read_once()

    async def read_once(self) -> None:
        db = self.pipeline.db
        try:
            state = await db[STATE].find_one({"_id": "orders"})
            assert state is not None
            physical = state["collections"]["orders"]
            shown = describe(state, lag_events=0, parked=0, now=datetime.now(UTC))
            if not self.states or self.states[-1] != shown:
                self.states.append(shown)
            if not self.collections or self.collections[-1] != physical:
                self.collections.append(physical)
            wanted = self.seen | {order_id for _, order_id in self.placed.orders}
            found = {
                doc["_id"]
                async for doc in db[physical].find({"_id": {"$in": list(wanted)}}, {"_id": 1})
            }
            if lost := self.seen - found:
                self.missing.append(f"{physical}: {len(lost)} missing, e.g. {min(lost)}")
            self.seen |= found
        except Exception as exc:
            self.errors.append(repr(exc))
        self.iterations += 1


async def place_until(
    writer: Writer, actor: Actor, product: str, placed: Placed, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        committed = await writer.place(actor, product)
        placed.orders.append((committed.position, str(committed.value.id)))


async def collect(
    pipeline: Pipeline, subscribed: asyncio.Event, stop: asyncio.Event
) -> list[dict[str, Any]]:
    messages = []
    async with pipeline.redis.pubsub() as pubsub:
        await pubsub.subscribe(projections_channel(pipeline.settings.redis_prefix))
        subscribed.set()
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                messages.append(orjson.loads(message["data"]))
    return messages


@pytest.fixture
def settings(services: Settings) -> Iterator[Settings]:
    """A log of this test's own: a rebuild replays the whole log, and the session's log
    holds every earlier test's events (a poison event among them), so on a busy machine
    replaying it all could outlast the rebuild's budget depending on test order."""
    with own_stores(services, f"shop_rebuild_{uuid.uuid4().hex[:8]}") as own:
        yield own


@pytest_asyncio.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(settings, pool_size=2, max_overflow=2)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def write_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The writers' own pool, so the load does not queue on the session's small one."""
    engine = build_engine(settings, pool_size=SEED_WRITERS, max_overflow=2)
    yield engine
    await engine.dispose()


async def test_rebuild_under_load_serves_every_document_and_ends_verified(
    engine: AsyncEngine, write_engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await start_logged_worker(pipeline)
    assert pipeline.settings.redis_url is not None
    writer = Writer(write_engine, pipeline.settings.redis_url, pipeline.settings.redis_prefix)
    try:
        await _rebuild_under_load(engine, writer, pipeline)
    finally:
        await writer.close()


async def _rebuild_under_load(engine: AsyncEngine, writer: Writer, pipeline: Pipeline) -> None:
    customers = [await writer.sign_up() for _ in range(SEED_WRITERS)]
    products = [await writer.product(stock=100_000) for _ in range(SEED_WRITERS)]
    seeded = Placed()

    async def seed(actor: Actor, product: str) -> None:
        for _ in range(SEED_ORDERS // SEED_WRITERS):
            committed = await writer.place(actor, product)
            seeded.orders.append((committed.position, str(committed.value.id)))

    await asyncio.gather(*(seed(c, p) for c, p in zip(customers, products, strict=True)))
    await pipeline.wait_until_projected(max(position for position, _ in seeded.orders))
    before = await pipeline.db[STATE].find_one({"_id": "orders"})
    assert before is not None
    known = {order_id for _, order_id in seeded.orders}
    assert await pipeline.db[before["collections"]["orders"]].count_documents(
        {"_id": {"$in": list(known)}}
    ) == len(known)

    # Load: two writers, a reader, a subscriber; then the rebuild.
    stop_load, stop_watch = asyncio.Event(), asyncio.Event()
    placed = Placed()
    reader = Reader(pipeline, placed, set(known))
    subscribed = asyncio.Event()
    messages = asyncio.create_task(collect(pipeline, subscribed, stop_watch))
    await subscribed.wait()
    watchers = [asyncio.create_task(reader.run(stop_watch))]
    writers = [
        asyncio.create_task(place_until(writer, c, p, placed, stop_load))
        for c, p in zip(customers[:2], products[:2], strict=True)
    ]
    try:
        started = time.monotonic()
        code, out, err = await shop(pipeline, "projections", "rebuild", "orders")
        rebuild_s = time.monotonic() - started
        stop_load.set()
        await asyncio.gather(*writers)
        head = max(position for position, _ in placed.orders)
        await pipeline.wait_until_projected(head)
    finally:
        stop_load.set()
        stop_watch.set()
        results = await asyncio.gather(messages, *watchers, *writers, return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    batches = results[0]
    assert isinstance(batches, list)
    # Once everything is projected, the reader finds every order of the load too.
    await reader.read_once()
    assert {order_id for _, order_id in placed.orders} <= reader.seen

    assert code == 0, err
    after = await pipeline.db[STATE].find_one({"_id": "orders"})
    assert after is not None
    generation = before["generation"] + 1
    assert after["generation"] == generation
    assert f"orders: generation {generation} live at position" in out
    assert after["collections"]["orders"] == f"orders__g{generation}"
    # The old generation is gone (the CLI drops it after a grace period, then exits).
    names = await pipeline.db.list_collection_names()
    assert before["collections"]["orders"] not in names
    assert after["collections"]["orders"] in names

    # The reader never failed and never missed a document, before, across and after the swap.
    assert reader.errors == []
    assert reader.missing == []
    assert reader.collections == [before["collections"]["orders"], after["collections"]["orders"]]
    assert reader.iterations > 20
    assert len(placed.orders) > 10, "the writers hardly wrote during the rebuild"
    assert "rebuilding" in reader.states, reader.states

    # No flood: one `rebuilt` notice; the other orders batches are live ones, at most one
    # per event committed meanwhile, and none names an order the replay went over.
    orders_batches = [m for m in batches if m["projection"] == "orders"]
    swapped = re.search(r"live at position (\d+)", out)
    assert swapped is not None, out
    assert [m for m in orders_batches if m.get("rebuilt")] == [
        {"projection": "orders", "ids": [], "position": int(swapped[1]), "rebuilt": True}
    ]
    live = [m for m in orders_batches if not m.get("rebuilt")]
    assert len(live) <= len(placed.orders) + 1, (len(live), len(placed.orders))
    assert not {i for m in live for i in m["ids"]} & known

    assert await pipeline.verify(engine) == {name: [] for name in ALL}
    status = await projections_status(pipeline)
    assert {(row.state, row.parked) for row in status.values()} == {("live", 0)}, status
    print(f"rebuild took {rebuild_s:.1f} s under load: {len(placed.orders)} orders placed, "
          f"{reader.iterations} reads, states {reader.states}, {len(live)} live batches")  # fmt: skip
