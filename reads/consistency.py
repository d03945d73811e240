"""Read-your-writes on the read side: wait briefly for the projections a query reads to
reach a position; `Freshness.caught_up` then decides between the projection and the write
store. The GraphQL half (tokens, where reads were served from, `extensions.consistency`)
is schema/consistency.py.

The wait listens to the worker's batch notifications (no polling loop) and is bounded;
when it runs out the caller answers from the write store instead. A position beyond the
event log's head is refused before any wait: nothing will ever reach it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
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


class PositionNotCommitted(ValueError):
    """A consistency position beyond the event log's head: no commit ever produced it."""


class LogHead:
    """The event log's head as far as this process knows it.

    Consistency tokens are signed, so a client cannot name a future position; this is the
    second line (a leaked key, or a database restored to before tokens it issued). The
    write store is asked only for positions beyond the highest head seen so far, and only
    on the path that was about to wait and perhaps fall back to the write store anyway.
    """

    def __init__(self, read_head: Callable[[], Awaitable[int]]) -> None:
        self._read_head = read_head
        self._known = 0

    async def check(self, position: int) -> None:
        """PositionNotCommitted when `position` is beyond the event log's head."""
        if position <= self._known:
            return
        self._known = max(self._known, await self._read_head())
        if position > self._known:
            raise PositionNotCommitted(
                f"the consistency token names position {position}, beyond the last "
                f"committed event ({self._known}): send a token from a recent mutation, or none"
            )


async def wait_for_position(
    read_model: ReadModel,
    hub: ProjectionHub,
    projections: tuple[str, ...],
    position: int,
    wait_s: float,
    head: LogHead,
) -> Freshness:
    """Freshness of `projections` against `position`, waiting up to `wait_s` for it.

    PositionNotCommitted, before any wait, for a position beyond the log's head.
    """
    current = await read_model.positions(projections)
    if min(current.values()) >= position:
        return Freshness(True, min(current.values()))
    await head.check(position)
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
