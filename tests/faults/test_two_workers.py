"""Two workers running: each projection is processed by exactly one of them; killing that
one hands its projections to the other within 10 s.

Leases live in projection_state (owner + lease_until); every tick a worker renews its
own, gives back what exceeds its fair share and takes free or expired ones. A worker
killed with SIGKILL releases nothing: its leases expire (PROJECTION_LEASE_TTL_MS) and the survivor
takes them over on a tick.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine

from reads.projection_state import STATE
from tests.pipeline import (
    ALL,
    Pipeline,
    WorkerLog,
    Writer,
    projections_status,
    start_logged_worker,
)
from workers.supervisor import TICK_S

HANDOVER_BUDGET_S = 10.0


async def owners(pipeline: Pipeline) -> dict[str, str | None]:
    return {doc["_id"]: doc.get("owner") async for doc in pipeline.db[STATE].find()}


def worker_id(log: WorkerLog) -> str:
    """The id the worker announced (`worker <id> started`)."""
    line = log.lines[log_index(log, '"message":"worker ', 'started"')]
    return line.split('"message":"worker ', 1)[1].split(" started", 1)[0]


def log_index(log: WorkerLog, *needles: str) -> int:
    return next(i for i, line in enumerate(log.lines) if all(n in line for n in needles))


async def test_two_workers_share_the_projections_and_a_killed_ones_pass_on_in_time(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    first = await start_logged_worker(pipeline)
    first_id = worker_id(first)
    assert set((await owners(pipeline)).values()) == {first_id}  # alone, it takes all four
    second = await start_logged_worker(pipeline)
    second_id = worker_id(second)
    # Fair share: the first gives two back on its next tick, the second takes them on its own.
    taken = [await second.wait_for(f"worker {second_id} now projects", budget_s=10)]
    taken.append(await second.wait_for(f"worker {second_id} now projects", after=taken[0] + 1))
    split = await owners(pipeline)
    assert sorted(split) == sorted(ALL)
    assert Counter(split.values()) == {first_id: 2, second_id: 2}, split

    assert pipeline.settings.redis_url is not None
    writer = Writer(engine, pipeline.settings.redis_url, pipeline.settings.redis_prefix)
    try:
        customer = await writer.sign_up()
        product = await writer.product(stock=1000)
        for _ in range(5):
            placed = await writer.place(customer, product)
        await pipeline.wait_until_projected(placed.position)
        # The owners did not change meanwhile: each projection had one runner throughout.
        assert await owners(pipeline) == split
        status = await projections_status(pipeline)
        assert {name: row.owner for name, row in status.items()} == split
        assert {row.state for row in status.values()} == {"live"}, status

        # Kill the worker that projects orders; the survivor takes its two over.
        victim, survivor = (first, second) if split["orders"] == first_id else (second, first)
        survivor_id = second_id if victim is first else first_id
        moving = sorted(name for name, owner in split.items() if owner != survivor_id)
        mark = len(survivor.lines)
        victim.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await victim.process.wait()
        after_kill = await writer.place(customer, product)
        for name in moving:
            await survivor.wait_for(
                f"worker {survivor_id} now projects {name}", after=mark, budget_s=HANDOVER_BUDGET_S
            )
        await pipeline.wait_until_projected(after_kill.position, budget_s=HANDOVER_BUDGET_S)
        handover_s = time.monotonic() - killed
    finally:
        await writer.close()

    assert handover_s < HANDOVER_BUDGET_S
    # Not before the lease could expire: the victim released nothing, it was killed.
    assert handover_s > (pipeline.settings.projection_lease_ttl_ms / 1000) - 2 * TICK_S
    assert set((await owners(pipeline)).values()) == {survivor_id}
    order = await pipeline.db["orders"].find_one({"_id": str(after_kill.value.id)})
    assert order is not None
    assert survivor.process.returncode is None

    status = await projections_status(pipeline)
    assert {row.owner for row in status.values()} == {survivor_id}, status
    assert {(row.state, row.parked) for row in status.values()} == {("live", 0)}, status
    # No commit was ever fenced off: two runners never overlapped on one projection.
    for log in (first, second):
        assert not [line for line in log.lines if "checkpoint moved" in line], log.tail()
    assert await pipeline.verify(engine) == {name: [] for name in ALL}
    print(f"handover in {handover_s:.1f} s")
