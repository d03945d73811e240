"""Projects batches of events: documents, dead letters and checkpoint in one transaction.

A crash anywhere leaves the whole batch or none of it, so replaying never double-counts.
The commit is fenced on the lease, the generation and the checkpoint it started from: a
worker that lost its lease, or raced a rebuild's swap, commits nothing.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.batch_timings import BatchTimings
from workers.log_reader import SharedLogReader
from workers.notifications import publish_batch
from workers.projection import Projector, StoredEvent, Write
from workers.state import DEAD_LETTERS, STATE, Attempt, load_state, parked_streams

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BASE_BACKOFF = timedelta(milliseconds=100)
Document = dict[str, Any]


class CheckpointMoved(Exception):
    """The state changed under the batch (lease taken over, or a rebuild swapped in)."""


@dataclass
class BatchPlan:
    """What one batch will commit."""

    writes: list[Write] = field(default_factory=list)
    dead_letters: list[Document] = field(default_factory=list)
    position: int = 0
    attempt: Attempt | None = None
    error: str | None = None
    handled: int = 0

    @property
    def ids(self) -> set[str]:
        return {write.doc_id for write in self.writes}


def backoff(count: int) -> timedelta:
    return BASE_BACKOFF * int(2 ** (count - 1))


def dead_letter(
    projection: str, generation: int, event: StoredEvent, error: str, now: datetime
) -> Document:
    return {
        "_id": f"{projection}:{generation}:{event.position}",
        "projection": projection,
        "generation": generation,
        "position": event.position,
        "stream_id": event.stream_id,
        "type": event.type,
        "error": error,
        "parked_at": now,
    }


def plan_batch(
    projector: Projector,
    generation: int,
    events: list[StoredEvent],
    checkpoint: int,
    parked: set[str],
    previous: Attempt | None,
    now: datetime,
) -> BatchPlan:
    """Decide a batch: apply, retry later (stop before the failing event), or park.

    Pure, so the failure policy is tested without services. An event that fails
    MAX_ATTEMPTS times is parked with every later event of its stream; other streams go on.
    """
    plan = BatchPlan(position=checkpoint)
    parked = set(parked)
    for event in events:
        if event.stream_id in parked:
            plan.dead_letters.append(
                dead_letter(
                    projector.name,
                    generation,
                    event,
                    "an earlier event of its stream is parked",
                    now,
                )
            )
        else:
            try:
                writes = projector.apply(event)
            except Exception as exc:
                error = f"{event.type} at {event.position}: {type(exc).__name__}: {exc}"
                count = (
                    previous.count + 1 if previous and previous.position == event.position else 1
                )
                plan.error = error
                if count < MAX_ATTEMPTS:
                    plan.attempt = Attempt(event.position, count, error, now + backoff(count))
                    return plan
                log.error("parking %s stream %s after %d attempts", error, event.stream_id, count)
                plan.dead_letters.append(dead_letter(projector.name, generation, event, error, now))
                parked.add(event.stream_id)
            else:
                plan.writes.extend(writes)
        plan.position = event.position
        plan.handled += 1
    return plan


async def apply_writes(
    db: AsyncDatabase[Document],
    collections: dict[str, str],
    writes: list[Write],
    session: AsyncClientSession,
) -> None:
    """Bulk-write per collection, keeping each collection's writes in event order."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for write in writes:
        grouped[write.collection].append(write.op)
    for logical, ops in grouped.items():
        await db[collections[logical]].bulk_write(ops, ordered=True, session=session)


class ProjectionRunner:
    """Runs one projection for one worker."""

    def __init__(
        self,
        projector: Projector,
        engine: AsyncEngine,
        client: AsyncMongoClient[Document],
        db: AsyncDatabase[Document],
        redis: Redis,
        redis_prefix: str,
        worker: str,
        batch_size: int,
        reader: SharedLogReader | None = None,
    ) -> None:
        self.projector = projector
        self.name = projector.name
        self._reader = reader or SharedLogReader(engine)
        self._client = client
        self._db = db
        self._redis = redis
        self._prefix = redis_prefix
        self._worker = worker
        self._batch_size = batch_size
        self._session: AsyncClientSession | None = None
        # The parked streams as of (generation, parked_revision): every change to the
        # dead letters bumps the revision in the state document this runner loads anyway.
        self._parked: tuple[tuple[int, int], set[str]] | None = None
        # Durations of the batches that found events, until the heartbeat records them.
        self.timings = BatchTimings()

    @property
    def session_id(self) -> Any:
        """The id of the one MongoDB session all of this runner's batches commit in.

        The supervisor records it beside the lease: if this process dies mid-batch, the
        server keeps its transaction open (locks included) until transactionLifetimeLimit
        Seconds pass, and the next owner ends it by this id instead of waiting.
        """
        return self._mongo_session().session_id["id"]

    def _mongo_session(self) -> AsyncClientSession:
        if self._session is None:
            self._session = self._client.start_session()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.end_session()
            self._session = None

    async def run_batch(self) -> tuple[int, float | None]:
        """Project the next batch; returns (events handled, seconds until a retry is due)."""
        started = time.perf_counter()
        state = await load_state(self._db, self.name)
        now = datetime.now(UTC)
        if state.attempt is not None and state.attempt.next_at > now:
            return 0, (state.attempt.next_at - now).total_seconds()
        events = await self._reader.read_events(state.position, self._batch_size)
        if not events:
            return 0, None
        parked = await self._parked_streams(state.generation, state.parked_revision)
        plan = plan_batch(
            self.projector, state.generation, events, state.position, parked, state.attempt, now
        )
        await self._commit(plan, state.position, state.generation, state.collections, now)
        self.timings.observe(time.perf_counter() - started)
        if plan.handled:
            await publish_batch(self._redis, self._prefix, self.name, plan.ids, plan.position)
        retry_in = backoff(plan.attempt.count).total_seconds() if plan.attempt else None
        return plan.handled, retry_in

    async def _parked_streams(self, generation: int, revision: int) -> set[str]:
        if self._parked is None or self._parked[0] != (generation, revision):
            streams = await parked_streams(self._db, self.name, generation)
            self._parked = ((generation, revision), streams)
        return self._parked[1]

    async def _commit(
        self,
        plan: BatchPlan,
        checkpoint: int,
        generation: int,
        collections: dict[str, str],
        now: datetime,
    ) -> None:
        progress: Document = {
            "position": plan.position,
            "attempt": plan.attempt.__dict__ if plan.attempt else None,
            "updated_at": now,
        }
        if plan.error is not None:  # the last error stays on show until another replaces it
            progress |= {"last_error": plan.error, "last_error_at": now}
        fence = {"_id": self.name, "owner": self._worker, "generation": generation,
                 "position": checkpoint}  # fmt: skip
        update: Document = {"$set": progress}
        if plan.dead_letters:
            update["$inc"] = {"parked_revision": 1}

        if not plan.writes and not plan.dead_letters:
            # Only the checkpoint moves (events this projection ignores): one document,
            # atomic on its own, so no transaction and its commit round trip.
            fenced = await self._db[STATE].update_one(fence, update)
            if fenced.matched_count != 1:
                raise CheckpointMoved(self.name)
            return

        async def batch(session: AsyncClientSession) -> None:
            await apply_writes(self._db, collections, plan.writes, session)
            for letter in plan.dead_letters:
                await self._db[DEAD_LETTERS].replace_one(
                    {"_id": letter["_id"]}, letter, upsert=True, session=session
                )
            fenced = await self._db[STATE].update_one(fence, update, session=session)
            if fenced.matched_count != 1:
                raise CheckpointMoved(self.name)

        await self._mongo_session().with_transaction(batch)
