"""Stopping the supervisor ends every projection loop, even one woken just before.

On Python 3.11, asyncio.wait_for returns the inner result when a cancel lands right after
the awaited event fired, swallowing the cancel: the loop then ran on and `stop()` (so
`shop worker`'s shutdown on SIGTERM, and its restart when Redis goes away) hung forever
with the leases still held. The supervisor runs as the worker runs it (start, wake,
stop), on a MongoDB database of the test's own; its one runner is a stand-in whose
batches say when they start, and a second batch runs until it is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bootstrap import build_mongo
from app.settings import Settings
from reads.projection_state import STATE
from tests.support import unique
from workers.batch_timings import BatchTimings
from workers.projectors import PROJECTORS
from workers.runner import ProjectionRunner
from workers.supervisor import Supervisor

STOP_BUDGET_S = 10
Document = dict[str, Any]


class _Runner:
    """The orders runner's stand-in: the first batch (the lease was just taken) finds
    nothing; the next one starts when a wake-up comes and runs until cancelled."""

    name = "orders"

    def __init__(self) -> None:
        self.projector = PROJECTORS["orders"]
        self.session_id = None
        self.timings = BatchTimings()
        self.batches = 0
        self.first_batch_done = asyncio.Event()
        self.second_batch_started = asyncio.Event()

    def forget(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def run_batch(self) -> tuple[int, float | None]:
        self.batches += 1
        if self.batches == 1:
            # Returns without yielding: when the test hears of it, the loop is back to
            # waiting for a wake-up.
            self.first_batch_done.set()
            return 0, None
        self.second_batch_started.set()
        await asyncio.Event().wait()
        return 0, None


@pytest_asyncio.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[Document]]:
    mongo = build_mongo(settings, patient=True)
    name = unique("supervisor_stop").replace("-", "_")
    try:
        yield mongo[name]
    finally:
        await mongo.drop_database(name)
        await mongo.close()


@pytest.mark.parametrize("stop", ["right_after_a_wake_up", "in_a_batch", "while_idle"])
async def test_stopping_ends_the_projection_loop_and_gives_the_lease_back(
    stop: str, db: AsyncDatabase[Document], engine: AsyncEngine, settings: Settings
) -> None:
    runner = _Runner()
    supervisor = Supervisor(
        [cast("ProjectionRunner", runner)],
        db,
        engine,
        unique("worker"),
        settings.projection_lease_ttl_ms,
    )
    await supervisor.start()
    try:
        async with asyncio.timeout(STOP_BUDGET_S):
            await runner.first_batch_done.wait()
        assert supervisor.owned == {"orders"}

        if stop == "right_after_a_wake_up":
            # stop() cancels before it yields: the cancel lands on a wake-up just fired.
            supervisor.wake()
        elif stop == "in_a_batch":
            supervisor.wake()
            async with asyncio.timeout(STOP_BUDGET_S):
                await runner.second_batch_started.wait()
        async with asyncio.timeout(STOP_BUDGET_S):
            await supervisor.stop()
    finally:
        await supervisor.stop()  # again: ends a loop that ran on, so it does not leak

    state = await db[STATE].find_one({"_id": "orders"})
    assert state is not None
    assert state["owner"] is None  # the lease was given back
    # Cancelled right after its wake-up, the loop must not start the batch it was woken for
    # (a loop that swallowed the cancel ran it, and stop() waited on it until the timeout).
    assert runner.batches == (2 if stop == "in_a_batch" else 1), "the loop ran on"
