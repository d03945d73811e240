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
import contextlib
import logging
import time
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
from reads.projection_state import DEAD_LETTERS, STATE, ProjectionState, physical_names
from workers.log_reader import read_events
from workers.notifications import publish_batch
from workers.policy import REPLAY, plan_batch, touched
from workers.projection import Projector, StoredEvent
from workers.state import ensure_state, load_state
from workers.working_set import DEFAULT_BUDGET_BYTES, WorkingSet

log = logging.getLogger(__name__)

Document = dict[str, Any]
# Another rebuild of the same projection counts as abandoned after this long without progress.
STALE_REBUILD = timedelta(seconds=60)
# Readers that resolved the old names just before the swap finish before those are dropped.
DROP_GRACE_S = 5.0
# If the rebuild dies while holding the live lease, workers take it back after this. The
# hold itself lasts as long as replaying the events the live worker was ahead by.
HOLD_TTL_MS = 10_000
BEAT_EVERY_S = 1.0
# Events per read of the log; the next page is read while this one folds.
PAGE_SIZE = 2000


class RebuildRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class RebuildResult:
    name: str
    generation: int
    position: int
    events: int
    parked: int
    # Replay and swap; not the grace wait before the old generation is dropped.
    seconds: float
    retired: tuple[str, ...] = ()


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
    batch_size: int = PAGE_SIZE,
    working_set_bytes: int = DEFAULT_BUDGET_BYTES,
    progress: Callable[[int], None] | None = None,
    drop_grace_s: float = DROP_GRACE_S,
) -> RebuildResult:
    """Rebuild `projector`'s collections from the whole event log without downtime."""
    [result] = await swap_in_rebuilt(
        engine, client, db, [projector], redis, redis_prefix, batch_size=batch_size,
        working_set_bytes=working_set_bytes, progress=progress,
    )  # fmt: skip
    await retire([result], db, drop_grace_s)
    return result


async def swap_in_rebuilt(
    engine: AsyncEngine,
    client: AsyncMongoClient[Document],
    db: AsyncDatabase[Document],
    projectors: list[Projector],
    redis: Redis,
    redis_prefix: str,
    *,
    batch_size: int = PAGE_SIZE,
    working_set_bytes: int = DEFAULT_BUDGET_BYTES,
    progress: Callable[[int], None] | None = None,
) -> list[RebuildResult]:
    """Replay the whole log into the next generation of each projection and make each
    live; the old generations' collections are left for `retire`.

    The projections share one read of the log: reading and decoding it costs more than
    folding it, and each would otherwise read all of it.
    """
    started = datetime.now(UTC)
    replays: list[tuple[Replay, ProjectionState]] = []
    try:
        for projector in projectors:
            await ensure_state(db, projector)
            old = await load_state(db, projector.name)
            generation = old.generation + 1
            rebuild_id = await claim(db, projector.name, generation, started)
            target = physical_names(projector, generation)
            replay = Replay(engine, client, db, projector, rebuild_id, generation, target,
                            batch_size, working_set_bytes=working_set_bytes)  # fmt: skip
            replays.append((replay, old))
            await replay.prepare()
        await replay_log([replay for replay, _ in replays], progress)
        results = []
        for replay, old in replays:
            if not await replay.swap(old.generation):
                # The live worker got ahead between the last read and the swap.
                log.info("%s: the live worker passed the rebuild; holding its lease", replay.name)
                await replay.swap_holding_lease(old.generation, progress)
            results.append(replay.result(old, started))
            await publish_batch(redis, redis_prefix, replay.name, [], replay.position,
                                rebuilt=True)  # fmt: skip
    except BaseException:
        for replay, _ in replays:
            await replay.abandon()
        raise
    return results


async def retire(
    results: list[RebuildResult], db: AsyncDatabase[Document], grace_s: float
) -> float:
    """Drop the generations the rebuilds replaced; the seconds it waited first.

    A reader that resolved the old names just before a swap may still be reading them
    (names are cached for reads.read_model.NAMES_TTL_S), so a non-empty old generation is
    dropped only after `grace_s`, one wait for all. Empty ones (a fresh store) go at once.
    """
    names = [physical for result in results for physical in result.retired]
    waited = 0.0
    if grace_s > 0 and any([await db[name].estimated_document_count() for name in names]):
        await asyncio.sleep(grace_s)
        waited = grace_s
    for name in names:
        await db.drop_collection(name)
    return waited


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
    working_set_bytes: int = DEFAULT_BUDGET_BYTES
    working_set: WorkingSet = field(init=False)
    beat_at: float = -BEAT_EVERY_S

    def __post_init__(self) -> None:
        self.working_set = WorkingSet(self.db, self.target, self.working_set_bytes)

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
        await replay_log([self], progress, until)

    def result(self, old: ProjectionState, started: datetime) -> RebuildResult:
        """What the rebuild did, once it swapped in (`old` was the live generation)."""
        seconds = (datetime.now(UTC) - started).total_seconds()
        log.info("rebuilt %s: %d events in %.1f s", self.name, self.handled, seconds)
        retired = tuple(
            physical
            for logical, physical in old.collections.items()
            if physical != self.target[logical]
        )
        return RebuildResult(self.name, self.generation, self.position, self.handled,
                             self.parked, seconds, retired)  # fmt: skip

    async def abandon(self) -> None:
        """Give up: the claim goes, and so do the new generation's collections (a
        rebuild that swapped in already keeps them: the claim is gone with the swap)."""
        abandoned = await self.db[STATE].update_one(
            {"_id": self.name, "rebuilding.id": self.rebuild_id}, {"$set": {"rebuilding": None}}
        )
        if abandoned.matched_count:
            for physical in self.target.values():
                await self.db.drop_collection(physical)

    async def fold(self, events: list[StoredEvent]) -> None:
        """Fold the next page of the log (past this replay's position)."""
        documents = self.working_set
        addressed = touched(self.projector, events, self.parked_streams)
        await documents.load(addressed.keys)
        plan = plan_batch(
            self.projector, self.generation, events, self.position, self.parked_streams,
            None, datetime.now(UTC), documents.documents, REPLAY, addressed,
        )  # fmt: skip
        documents.changed(plan.changed)
        if plan.dead_letters:
            self.parked_streams.update(letter["stream_id"] for letter in plan.dead_letters)
            await self.db[DEAD_LETTERS].insert_many(plan.dead_letters)
            self.parked += len(plan.dead_letters)
        if documents.full:
            await documents.flush()
        self.position = events[-1].position
        self.handled += len(events)
        await self._beat()

    async def _beat(self) -> None:
        """Show the rebuild's progress (the API's /metrics exports it) and that it lives,
        once a second (STALE_REBUILD is a minute)."""
        if time.monotonic() - self.beat_at < BEAT_EVERY_S:
            return
        self.beat_at = time.monotonic()
        owned = await self.db[STATE].update_one(
            {"_id": self.name, "rebuilding.id": self.rebuild_id},
            {"$set": {"rebuilding.beat_at": datetime.now(UTC),
                      "rebuilding.position": self.position}},
        )  # fmt: skip
        if owned.matched_count != 1:
            raise RebuildRefused(f"the rebuild of {self.name} was taken over by another process")

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


async def replay_log(
    replays: list[Replay], progress: Callable[[int], None] | None, until: int | None = None
) -> None:
    """Feed the log past the replays' common position to every replay, until it is
    exhausted or (with `until`) up to that position; then flush their working sets.

    The log is read in pages, the next one while this one folds; the touched documents
    stay in memory (`WorkingSet`) and reach MongoDB when it is full and at the end, each
    written once per flush, unordered and outside any transaction: the new generation has
    no other writer and no reader until the swap, and a rebuild that dies is started again
    from nothing.
    """
    first = replays[0]
    if any(replay.position != first.position for replay in replays):
        raise ValueError("replays read the log together from one position")
    pages = _Pages(first.engine, first.position, first.batch_size, until)
    try:
        while events := await pages.next():
            for replay in replays:
                await replay.fold(events)
            if progress:
                progress(first.position)
        for replay in replays:
            await replay.working_set.flush(wait=True)
    finally:
        await pages.close()
        for replay in replays:
            await replay.working_set.close()


class _Pages:
    """The log after a position in pages, the next page read while the caller works."""

    def __init__(self, engine: AsyncEngine, after: int, size: int, until: int | None) -> None:
        self._engine, self._size, self._until = engine, size, until
        self._next: asyncio.Task[list[StoredEvent]] | None = self._read(after)

    def _read(self, after: int) -> asyncio.Task[list[StoredEvent]] | None:
        if self._until is not None and after >= self._until:
            return None
        return asyncio.create_task(read_events(self._engine, after, self._size))

    async def next(self) -> list[StoredEvent]:
        if self._next is None:
            return []
        events = await self._next
        self._next = self._read(events[-1].position) if events else None
        return events

    async def close(self) -> None:
        if self._next is not None:
            self._next.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._next
