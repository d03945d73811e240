"""Stopping the supervisor ends every projection loop, even one woken just before.

On Python 3.11, asyncio.wait_for returns the inner result when a cancel lands right after
the awaited event fired, swallowing the cancel: the loop then ran on and `stop()` (so
`shop worker`'s shutdown on SIGTERM, and its restart when Redis goes away) hung forever
with the leases still held.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from app.bootstrap import load_settings
from workers.runner import ProjectionRunner
from workers.supervisor import Supervisor


class _Idle:
    """A runner the loop never calls: its projection is not owned."""

    name = "orders"


@pytest.mark.parametrize("yields", [0, 1, 2, 3])
async def test_a_loop_cancelled_right_after_a_wake_up_stops(yields: int) -> None:
    supervisor = Supervisor(
        [cast("ProjectionRunner", _Idle())],
        cast("Any", None),
        cast("Any", None),
        "w",
        load_settings().projection_lease_ttl_ms,
    )
    loop = asyncio.create_task(supervisor._loop("orders"))
    await asyncio.sleep(0)  # one turn of the event loop: the task runs to its wait for a wake-up

    supervisor.wake()
    for _ in range(yields):
        await asyncio.sleep(0)
    loop.cancel()

    done, _ = await asyncio.wait({loop}, timeout=2)
    if not done:  # do not leave it running: cancel it again, now that the wake-up is over
        loop.cancel()
        await asyncio.wait({loop}, timeout=2)
    assert done, "the projection loop swallowed its cancellation"
    assert loop.cancelled()
