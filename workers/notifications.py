"""Announces committed batches on Redis pub/sub, for subscriptions and read-your-writes waiters."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson
from redis.asyncio import Redis

log = logging.getLogger(__name__)


def projections_channel(redis_prefix: str) -> str:
    """The channel carrying `{projection, ids, position, after}` after every committed batch."""
    return f"{redis_prefix}:projections"


async def publish_batch(
    redis: Redis,
    redis_prefix: str,
    projection: str,
    ids: Iterable[str],
    position: int,
    *,
    after: int | None = None,
    rebuilt: bool = False,
) -> None:
    """Best effort: the documents are committed; listeners also re-check on their own.

    `after` is the checkpoint the batch started from: a listener that saw every batch up
    to `after` knows `ids` are all that changed up to `position`, and one that did not
    knows it missed a notification (reads.near_cache).
    """
    message: dict[str, object] = {
        "projection": projection,
        "ids": sorted(set(ids)),
        "position": position,
    }
    if after is not None:
        message["after"] = after
    if rebuilt:
        message["rebuilt"] = True
    try:
        await redis.publish(projections_channel(redis_prefix), orjson.dumps(message))
    except Exception as exc:  # Redis down: projections go on, waiters fall back
        log.warning("could not publish %s batch at %s: %s", projection, position, exc)
