"""A runner starts each batch from the state and documents its last commit left
(workers/runner_memory.py). Whatever else changes the projection in between must make
that batch's fence fail, so it forgets and reads afresh instead of writing a stale copy.

Here that change is `shop projections retry` folding a parked order into the sales
totals the runner remembers: the next batch must add to the retried totals, not to its
own older copy. The live worker is an in-process ProjectionRunner, so the interleaving
is set up, not hoped for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.documents import SALES_TOTALS, SALES_TOTALS_ID
from reads.projection_state import DEAD_LETTERS, STATE
from tests.pipeline import Pipeline, Writer, drain, live_runner
from workers.log_reader import log_head, read_positions
from workers.policy import dead_letter
from workers.projectors import PROJECTORS
from workers.retry import retry_parked
from workers.state import acquire_lease, ensure_state, load_state

LIVE = "memory-test-worker"
NAME = "sales"


async def totals(pipeline: Pipeline) -> dict[str, Any]:
    state = await load_state(pipeline.db, NAME)
    found = await pipeline.db[state.collections[SALES_TOTALS]].find_one({"_id": SALES_TOTALS_ID})
    return found or {"order_count": 0, "revenue_cents": 0}


async def park(pipeline: Pipeline, engine: AsyncEngine, position: int) -> None:
    """Park the event at `position` as a failing batch would: its letter, and the bumped
    parked revision."""
    state = await load_state(pipeline.db, NAME)
    [event] = await read_positions(engine, [position])
    letter = dead_letter(NAME, state.generation, event, "parked by the test", datetime.now(UTC))
    await pipeline.db[DEAD_LETTERS].replace_one({"_id": letter["_id"]}, letter, upsert=True)
    await pipeline.db[STATE].update_one({"_id": NAME}, {"$inc": {"parked_revision": 1}})


@pytest.mark.timeout(60)
async def test_a_retry_between_batches_is_not_overwritten_by_what_the_runner_remembers(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    assert pipeline.settings.redis_url is not None
    writer = Writer(engine, pipeline.settings.redis_url, pipeline.settings.redis_prefix)
    projector = PROJECTORS[NAME]
    live = live_runner(engine, pipeline, projector, LIVE)
    try:
        await ensure_state(pipeline.db, projector)
        assert await acquire_lease(pipeline.db, NAME, LIVE, ttl_ms=60_000)
        head, _ = await log_head(engine)
        await pipeline.db[STATE].update_one({"_id": NAME}, {"$set": {"position": head}})
        before = await totals(pipeline)
        customer, product = await writer.sign_up(), await writer.product(price_cents=700)

        first = await writer.place(customer, product)
        await drain(live)  # the totals are now remembered

        parked = await writer.place(customer, product, quantity=2)
        await park(pipeline, engine, parked.position)
        # The parked revision moved under the remembered state: the runner's fence fails,
        # it reads afresh and skips the parked stream.
        await drain(live)
        assert (await totals(pipeline))["order_count"] == before["order_count"] + 1

        # The runner remembers the totals with `first` only; retry adds `parked` to them.
        assert await retry_parked(
            engine, pipeline.mongo, pipeline.db, projector, pipeline.redis,
            pipeline.settings.redis_prefix,
        ) == (1, 0)  # fmt: skip
        last = await writer.place(customer, product, quantity=3)
        await drain(live)

        after = await totals(pipeline)
        orders = (first, parked, last)
        assert after["order_count"] == before["order_count"] + len(orders)
        revenue = sum(committed.value.total_cents for committed in orders)
        assert after["revenue_cents"] == before["revenue_cents"] + revenue
        state = await load_state(pipeline.db, NAME)
        assert state.position == last.position
    finally:
        await live.close()
        await writer.close()
