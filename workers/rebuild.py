"""Blue/green rebuild: replay the whole log into a new generation, then swap atomically.

Queries keep reading the live generation until the swap; the live worker keeps
projecting into it meanwhile. The swap commits only if the live checkpoint has not
passed the rebuild's position, so no reader ever misses a document it has seen. Under
steady writes the live worker can win that race every time, so after losing it once
the rebuild holds the projection's lease while it replays the few events it is behind
(`Replay.swap_holding_lease`): how long a rebuild takes no longer depends on luck.
Subscribers get one "rebuilt" notice, not a replay flood.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
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
# If the rebuild dies while holding the live lease, workers take it back after this. The
# hold itself lasts as long as replaying the events the live worker was ahead by.
HOLD_TTL_MS = 10_000


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


async def claim(db: AsyncDatabase[Document], name: str, generation: int, started: datetime) -> str:
    """Mark `name` as being rebuilt by a new rebuild id, unless another rebuild is alive."""
    rebuild_id = uuid.uuid4().hex
    claimed = await db[STATE].find_one_and_update(
        {
            "_id": name,
            "$or": [
                {"rebuilding": None},
                {"rebuilding": {"$exists": False}},
                {"rebuilding.beat_at": {"$lt": started - STALE_REBUILD}},
            ],
        },
        {"$set": {"rebuilding": {"id": rebuild_id, "generation": generation, "beat_at": started}}},
    )
    if claimed is None:
        raise RebuildRefused(f"{name} is being rebuilt by another process already")
    return rebuild_id


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
    rebuild_id = await claim(db, projector.name, generation, started)
    replay = Replay(engine, client, db, projector, rebuild_id, generation, target, batch_size)
    try:
        await replay.prepare()
        await replay.catch_up(progress)
        if not await replay.swap(old.generation):
            # The live worker got ahead between the last read and the swap.
            log.info("%s: the live worker passed the rebuild; holding its lease", projector.name)
            await replay.swap_holding_lease(old.generation, progress)
    except BaseException:
        await db[STATE].update_one(
            {"_id": projector.name, "rebuilding.id": rebuild_id}, {"$set": {"rebuilding": None}}
        )
        for physical in target.values():
            await db.drop_collection(physical)
        raise

    position, handled, parked = replay.position, replay.handled, replay.parked
    await publish_batch(redis, redis_prefix, projector.name, [], position, rebuilt=True)
    await asyncio.sleep(drop_grace_s)
    for logical, physical in old.collections.items():
        if physical != target[logical]:
            await db.drop_collection(physical)
    seconds = (datetime.now(UTC) - started).total_seconds()
    log.info("rebuilt %s: %d events in %.1f s", projector.name, handled, seconds)
    return RebuildResult(projector.name, generation, position, handled, parked, seconds)


@dataclass
class Replay:
    """One rebuild's replay of the log into the next generation's collections."""

    engine: AsyncEngine
    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    projector: Projector
    rebuild_id: str
    generation: int
    target: dict[str, str]
    batch_size: int
    position: int = 0
    handled: int = 0
    parked: int = 0
    parked_streams: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.projector.name

    @property
    def holder(self) -> str:
        """The lease owner a holding rebuild writes (no worker has this name)."""
        return f"rebuild:{self.rebuild_id}"

    async def prepare(self) -> None:
        for physical in self.target.values():
            await self.db.drop_collection(physical)  # leftovers of an interrupted rebuild
        await self.db[DEAD_LETTERS].delete_many(
            {"projection": self.name, "generation": self.generation}
        )
        await ensure_indexes(self.db, self.target)

    async def catch_up(
        self, progress: Callable[[int], None] | None, until: int | None = None
    ) -> None:
        """Replay until the log is exhausted, or (with `until`) up to that position."""
        while until is None or self.position < until:
            events = await read_events(self.engine, self.position, self.batch_size)
            if not events:
                return
            writes, letters = _replay(self.projector, self.generation, events, self.parked_streams)
            await _commit_batch(
                self.client, self.db, self.name, self.rebuild_id, self.target, writes, letters,
                events[-1].position,
            )  # fmt: skip
            self.position = events[-1].position
            self.handled += len(events)
            self.parked += len(letters)
            if progress:
                progress(self.position)

    async def swap(self, old_generation: int) -> bool:
        """Make the new generation live, if the live checkpoint has not passed ours.

        A lease this rebuild holds goes back to its owner in the same update.
        """
        held = {"$eq": ["$owner", self.holder]}

        async def swap(session: AsyncClientSession) -> bool:
            swapped = await self.db[STATE].update_one(
                {
                    "_id": self.name,
                    "rebuilding.id": self.rebuild_id,
                    "generation": old_generation,
                    "position": {"$lte": self.position},
                },
                [
                    {
                        "$set": {
                            "generation": self.generation,
                            "collections": {"$literal": self.target},
                            "position": self.position,
                            "attempt": None,
                            "last_error": None,
                            **{
                                lease: {"$cond": [held, f"$rebuilding.held.{lease}", f"${lease}"]}
                                for lease in ("owner", "lease_until", "owner_session")
                            },
                        }
                    },
                    {"$set": {"rebuilding": None}},
                ],
                session=session,
            )
            if swapped.matched_count != 1:
                return False
            await self.db[DEAD_LETTERS].delete_many(
                {"projection": self.name, "generation": old_generation}, session=session
            )
            return True

        async with self.client.start_session() as session:
            return await session.with_transaction(swap)

    async def swap_holding_lease(
        self, old_generation: int, progress: Callable[[int], None] | None
    ) -> None:
        """Freeze the live checkpoint, replay up to it and swap; then give the lease back.

        Taking the lease fences out the live worker's batches (their commit checks the
        owner), so the checkpoint read here is the last one until the swap. Its owner,
        expiry and session go back in the swap itself, so the worker carries on at once.
        """
        held = await self.db[STATE].find_one_and_update(
            {"_id": self.name, "rebuilding.id": self.rebuild_id, "generation": old_generation},
            [
                {
                    "$set": {
                        "rebuilding.held": {
                            "owner": {"$ifNull": ["$owner", None]},
                            "lease_until": "$lease_until",
                            "owner_session": {"$ifNull": ["$owner_session", None]},
                        },
                        "owner": self.holder,
                        "lease_until": {"$add": ["$$NOW", HOLD_TTL_MS]},
                        "owner_session": None,
                    }
                }
            ],
            return_document=ReturnDocument.AFTER,
        )
        if held is None:
            raise RebuildRefused(f"the rebuild of {self.name} was taken over by another process")
        try:
            await self.catch_up(progress, until=held["position"])
            if not await self.swap(old_generation):
                raise RebuildRefused(f"{self.name} moved on while its lease was held")
        except BaseException:
            await self.db[STATE].update_one(
                {"_id": self.name, "owner": self.holder}, _GIVE_LEASE_BACK
            )
            raise


# The lease as it was before a rebuild held it (an aggregation-pipeline update).
_GIVE_LEASE_BACK = [
    {
        "$set": {
            "owner": "$rebuilding.held.owner",
            "lease_until": "$rebuilding.held.lease_until",
            "owner_session": "$rebuilding.held.owner_session",
        }
    }
]


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
    position: int,
) -> None:
    async def batch(session: AsyncClientSession) -> None:
        await apply_writes(db, target, writes, session)
        if letters:
            await db[DEAD_LETTERS].insert_many(letters, session=session)
        owned = await db[STATE].update_one(
            {"_id": name, "rebuilding.id": rebuild_id},
            # The position shows the rebuild's progress (the API's /metrics exports it).
            {"$set": {"rebuilding.beat_at": datetime.now(UTC), "rebuilding.position": position}},
            session=session,
        )
        if owned.matched_count != 1:
            raise RebuildRefused(f"the rebuild of {name} was taken over by another process")

    async with client.start_session() as session:
        await session.with_transaction(batch)
