"""Read-your-writes: wait briefly for the projections a query reads to reach a position.

The wait listens to the worker's batch notifications (no polling loop) and is bounded;
when it runs out the caller answers from the write store instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from reads.hub import ListenerDropped, ProjectionHub
from reads.read_model import ReadModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Freshness:
    """Whether the projections reached the position, and the lowest position among them;
    `waited` when they had not at first, so the read waited on notifications."""

    caught_up: bool
    position: int
    waited: bool = False


async def wait_for_position(
    read_model: ReadModel,
    hub: ProjectionHub,
    projections: tuple[str, ...],
    position: int,
    wait_s: float,
) -> Freshness:
    """Freshness of `projections` against `position`, waiting up to `wait_s` for it."""
    current = await read_model.positions(projections)
    if min(current.values()) >= position:
        return Freshness(True, min(current.values()))
    deadline = time.monotonic() + wait_s
    try:
        async with hub.listen(projections) as listener:
            # Read again once subscribed: a batch may have committed in between.
            current = await read_model.positions(projections)
            while min(current.values()) < position:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    notice = await asyncio.wait_for(listener.next(), left)
                except TimeoutError:
                    break
                current[notice.projection] = max(current[notice.projection], notice.position)
    except (ListenerDropped, RedisError, OSError) as exc:
        # No notifications to wait on: judge by the positions read so far.
        log.info("read-your-writes wait cut short: %s", exc)
    lowest = min(current.values())
    return Freshness(lowest >= position, lowest, waited=True)
