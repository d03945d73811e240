"""Blue/green rebuild: replay the whole log into a new generation, then swap atomically.

Queries keep reading the live generation until the swap; the live worker keeps
projecting into it meanwhile. The swap commits only if the live checkpoint has not
passed the rebuild's position (else the rebuild reads on and tries again), so no event
is lost between the two. Subscribers get one "rebuilt" notice, not a replay flood.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.documents import ensure_indexes
from workers.log_reader import read_events
from workers.notifications import publish_batch
from workers.projection import Projector, StoredEvent, Write
from workers.runner import apply_writes, dead_letter
from workers.state import DEAD_LETTERS, STATE, ensure_state, load_state, physical_names

log = logging.getLogger(__name__)

Document = dict[str, Any]
# Another rebuild of the same projection counts as abandoned after this long without progress.
STALE_REBUILD = timedelta(seconds=60)
# Readers that resolved the old names just before the swap finish before those are dropped.
DROP_GRACE_S = 5.0


class RebuildRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class RebuildResult:
    name: str
    generation: int
    position: int
    events: int
    parked: int
    seconds: float


async def rebuild(
    engine: AsyncEngine,
    client: AsyncMongoClient[Document],
    db: AsyncDatabase[Document],
    projector: Projector,
    redis: Redis,
    redis_prefix: str,
    *,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    drop_grace_s: float = DROP_GRACE_S,
) -> RebuildResult:
    """Rebuild `projector`'s collections from the whole event log without downtime."""
    started = datetime.now(UTC)
    await ensure_state(db, projector)
    old = await load_state(db, projector.name)
    generation = old.generation + 1
    target = physical_names(projector, generation)
    rebuild_id = uuid.uuid4().hex
    claimed = await db[STATE].find_one_and_update(
        {
            "_id": projector.name,
            "$or": [
                {"rebuilding": None},
                {"rebuilding": {"$exists": False}},
                {"rebuilding.beat_at": {"$lt": started - STALE_REBUILD}},
            ],
        },
        {"$set": {"rebuilding": {"id": rebuild_id, "generation": generation, "beat_at": started}}},
    )
    if claimed is None:
        raise RebuildRefused(f"{projector.name} is being rebuilt by another process already")
    try:
        position, handled, parked = await _build(
            engine, client, db, projector, rebuild_id, old.generation, generation, target,
            batch_size, progress,
        )  # fmt: skip
    except BaseException:
        await db[STATE].update_one(
            {"_id": projector.name, "rebuilding.id": rebuild_id}, {"$set": {"rebuilding": None}}
        )
        for physical in target.values():
            await db.drop_collection(physical)
        raise

    await publish_batch(redis, redis_prefix, projector.name, [], position, rebuilt=True)
    await asyncio.sleep(drop_grace_s)
    for logical, physical in old.collections.items():
        if physical != target[logical]:
            await db.drop_collection(physical)
    seconds = (datetime.now(UTC) - started).total_seconds()
    log.info("rebuilt %s: %d events in %.1f s", projector.name, handled, seconds)
    return RebuildResult(projector.name, generation, position, handled, parked, seconds)


async def _build(
    engine: AsyncEngine,
    client: AsyncMongoClient[Document],
    db: AsyncDatabase[Document],
    projector: Projector,
    rebuild_id: str,
    old_generation: int,
    generation: int,
    target: dict[str, str],
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, int, int]:
    """Replay the log into `target` and swap it in; returns (position, events, parked)."""
    for physical in target.values():
        await db.drop_collection(physical)  # leftovers of an interrupted rebuild
    await db[DEAD_LETTERS].delete_many({"projection": projector.name, "generation": generation})
    await ensure_indexes(db, target)
    position, handled, parked = 0, 0, 0
    parked_streams: set[str] = set()
    while True:
        events = await read_events(engine, position, batch_size)
        if events:
            writes, letters = _replay(projector, generation, events, parked_streams)
            await _commit_batch(client, db, projector.name, rebuild_id, target, writes, letters)
            position = events[-1].position
            handled += len(events)
            parked += len(letters)
            if progress:
                progress(position)
            continue
        if await _swap(
            client, db, projector.name, rebuild_id, old_generation, generation, target, position
        ):
            return position, handled, parked
        # The live worker got ahead of us between the read and the swap: read on.


def _replay(
    projector: Projector, generation: int, events: list[StoredEvent], parked: set[str]
) -> tuple[list[Write], list[Document]]:
    """A rebuild does not retry: the projector is pure, so a failure parks at once."""
    now = datetime.now(UTC)
    writes: list[Write] = []
    letters: list[Document] = []
    for event in events:
        if event.stream_id in parked:
            reason = "an earlier event of its stream is parked"
            letters.append(dead_letter(projector.name, generation, event, reason, now))
            continue
        try:
            writes.extend(projector.apply(event))
        except Exception as exc:
            parked.add(event.stream_id)
            error = f"{event.type} at {event.position}: {type(exc).__name__}: {exc}"
            letters.append(dead_letter(projector.name, generation, event, error, now))
    return writes, letters


async def _commit_batch(
    client: AsyncMongoClient[Document],
    db: AsyncDatabase[Document],
    name: str,
    rebuild_id: str,
    target: dict[str, str],
    writes: list[Write],
    letters: list[Document],
) -> None:
    async def batch(session: AsyncClientSession) -> None:
        await apply_writes(db, target, writes, session)
        if letters:
            await db[DEAD_LETTERS].insert_many(letters, session=session)
        owned = await db[STATE].update_one(
            {"_id": name, "rebuilding.id": rebuild_id},
            {"$set": {"rebuilding.beat_at": datetime.now(UTC)}},
            session=session,
        )
        if owned.matched_count != 1:
            raise RebuildRefused(f"the rebuild of {name} was taken over by another process")

    async with client.start_session() as session:
        await session.with_transaction(batch)


async def _swap(
    client: AsyncMongoClient[Document],
    db: AsyncDatabase[Document],
    name: str,
    rebuild_id: str,
    old_generation: int,
    generation: int,
    target: dict[str, str],
    position: int,
) -> bool:
    """Make the new generation live, if the live checkpoint has not passed `position`."""

    async def swap(session: AsyncClientSession) -> bool:
        swapped = await db[STATE].update_one(
            {
                "_id": name,
                "rebuilding.id": rebuild_id,
                "generation": old_generation,
                "position": {"$lte": position},
            },
            {
                "$set": {
                    "generation": generation,
                    "collections": target,
                    "position": position,
                    "attempt": None,
                    "rebuilding": None,
                    "last_error": None,
                }
            },
            session=session,
        )
        if swapped.matched_count != 1:
            return False
        await db[DEAD_LETTERS].delete_many(
            {"projection": name, "generation": old_generation}, session=session
        )
        return True

    async with client.start_session() as session:
        return await session.with_transaction(swap)
