"""A rebuild that loses the race to its swap (the live worker projected past it between
its last read and the swap) holds the live lease for the final catch-up, swaps, and
gives the lease back exactly as it was: it converges however fast the writers are.

The live worker is an in-process ProjectionRunner, so the race is set up, not hoped for.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.projection_state import STATE, physical_names
from tests.pipeline import Pipeline, Writer, drain, live_runner
from workers.log_reader import log_head
from workers.projectors import PROJECTORS
from workers.rebuild import Replay, claim
from workers.state import acquire_lease, ensure_state

LIVE = "live-worker"


async def start_at_head(engine: AsyncEngine, pipeline: Pipeline) -> int:
    """The log is shared by the whole test session (a poison event of another test
    included): this test's projection starts at its current head."""
    head, _ = await log_head(engine)
    await pipeline.db[STATE].update_one({"_id": "orders"}, {"$set": {"position": head}})
    return head


async def test_a_rebuild_that_lost_the_race_holds_the_lease_then_gives_it_back(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    assert pipeline.settings.redis_url is not None
    writer = Writer(engine, pipeline.settings.redis_url, pipeline.settings.redis_prefix)
    projector = PROJECTORS["orders"]
    live = live_runner(engine, pipeline, projector, LIVE)
    try:
        await ensure_state(pipeline.db, projector)
        assert await acquire_lease(pipeline.db, "orders", LIVE, ttl_ms=60_000)
        await pipeline.db[STATE].update_one(
            {"_id": "orders"}, {"$set": {"owner_session": live.session_id}}
        )
        head = await start_at_head(engine, pipeline)
        customer, product = await writer.sign_up(), await writer.product()
        first = [await writer.place(customer, product) for _ in range(3)]
        await drain(live)

        replay = Replay(
            engine, pipeline.mongo, pipeline.db, projector,
            await claim(pipeline.db, "orders", 1, datetime.now(UTC)),
            1, physical_names(projector, 1), batch_size=2, position=head,
        )  # fmt: skip
        await replay.prepare()
        await replay.catch_up(None)
        assert replay.position == first[-1].position

        # The race: the live worker projects one more order before the swap, and one
        # more is committed that nobody has projected yet.
        ahead = await writer.place(customer, product)
        await drain(live)
        newest = await writer.place(customer, product)
        lease = await pipeline.db[STATE].find_one({"_id": "orders"})
        assert lease is not None
        assert lease["position"] == ahead.position > replay.position
        assert not await replay.swap(old_generation=0)

        await replay.swap_holding_lease(old_generation=0, progress=None)

        state = await pipeline.db[STATE].find_one({"_id": "orders"})
        assert state is not None
        assert (state["generation"], state["rebuilding"]) == (1, None)
        # At least as far as the live checkpoint was, so no reader loses a document.
        assert state["position"] >= ahead.position
        assert state["collections"] == physical_names(projector, 1)
        # The lease is back with its owner, untouched.
        for key in ("owner", "lease_until", "owner_session"):
            assert state[key] == lease[key], key
        # The live worker carries on in the new generation without a refused batch.
        await drain(live)
        orders = pipeline.db[state["collections"]["orders"]]
        ids = {str(c.value.id) for c in [*first, ahead, newest]}
        assert {doc["_id"] async for doc in orders.find({}, {"_id": 1})} == ids
        after = await pipeline.db[STATE].find_one({"_id": "orders"})
        assert after is not None
        assert after["position"] == newest.position
        assert after["owner"] == LIVE
    finally:
        await live.close()
        await writer.close()


async def test_a_failed_hold_gives_the_lease_back(engine: AsyncEngine, pipeline: Pipeline) -> None:
    """A rebuild that fails while holding the lease (here: it was taken over) restores it."""
    assert pipeline.settings.redis_url is not None
    writer = Writer(engine, pipeline.settings.redis_url, pipeline.settings.redis_prefix)
    projector = PROJECTORS["orders"]
    live = live_runner(engine, pipeline, projector, LIVE)
    try:
        await ensure_state(pipeline.db, projector)
        assert await acquire_lease(pipeline.db, "orders", LIVE, ttl_ms=60_000)
        head = await start_at_head(engine, pipeline)
        customer, product = await writer.sign_up(), await writer.product()
        await writer.place(customer, product)
        await drain(live)
        replay = Replay(
            engine, pipeline.mongo, pipeline.db, projector,
            await claim(pipeline.db, "orders", 1, datetime.now(UTC)),
            1, physical_names(projector, 1), batch_size=100, position=head,
        )  # fmt: skip
        await replay.prepare()
        lease = await pipeline.db[STATE].find_one({"_id": "orders"})
        assert lease is not None

        def taken_over(_position: int) -> None:
            raise RuntimeError("taken over mid-hold")

        with pytest.raises(RuntimeError, match="taken over mid-hold"):
            await replay.swap_holding_lease(old_generation=0, progress=taken_over)
        state = await pipeline.db[STATE].find_one({"_id": "orders"})
        assert state is not None
        assert state["generation"] == 0
        for key in ("owner", "lease_until", "owner_session"):
            assert state.get(key) == lease.get(key), key
    finally:
        await live.close()
        await writer.close()
