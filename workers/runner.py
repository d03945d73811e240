"""Projects batches of events: documents, dead letters and checkpoint in one transaction.

A crash anywhere leaves the whole batch or none of it, so replaying never double-counts.
The commit is fenced on the lease, the generation and the checkpoint it started from: a
worker that lost its lease, or raced a rebuild's swap, commits nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.projection_state import DEAD_LETTERS, STATE, ProjectionState
from workers.batch_timings import BatchTimings
from workers.document_store import read_documents, write_documents
from workers.log_reader import SharedLogReader
from workers.notifications import publish_batch
from workers.policy import LIVE, BatchPlan, Touched, backoff, plan_batch, touched
from workers.projection import DocKey, Projector, StoredEvent
from workers.projection import Document as Projected
from workers.runner_memory import RunnerMemory
from workers.state import load_state, parked_streams

log = logging.getLogger(__name__)

Document = dict[str, Any]
# A backlog grows the batch up to this many times the configured size, so a worker that
# fell behind catches up in fewer, larger transactions instead of falling further behind.
MAX_BATCH_GROWTH = 10


class CheckpointMoved(Exception):
    """The state changed under the batch (lease taken over, or a rebuild swapped in)."""


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
        self._max_batch = batch_size * MAX_BATCH_GROWTH
        self._limit = batch_size
        self._session: AsyncClientSession | None = None
        # The parked streams as of (generation, parked_revision): every change to the
        # dead letters bumps the revision in the state document this runner loads anyway.
        self._parked: tuple[tuple[int, int], set[str]] | None = None
        # Durations of the batches that found events, until the heartbeat records them.
        self.timings = BatchTimings()
        self._memory = RunnerMemory(db.codec_options)

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

    def forget(self) -> None:
        """Read the state and documents afresh next batch (the lease was just taken)."""
        self._memory.forget()

    async def run_batch(self) -> tuple[int, float | None]:
        """Project the next batch; returns (events handled, seconds until a retry is due)."""
        remembered = self._memory.state is not None
        try:
            return await self._run_batch()
        except CheckpointMoved:
            self._memory.forget()
            if not remembered:
                raise
            # What was remembered went stale (a retry, a swap, another owner): nothing was
            # committed; once more from what MongoDB holds, which fails only if it moved
            # again.
            return await self.run_batch()
        except BaseException:
            # An outage or a cancellation: whatever was remembered may be stale or half
            # applied; the next batch starts from what MongoDB holds.
            self._memory.forget()
            raise

    async def _run_batch(self) -> tuple[int, float | None]:
        started = time.perf_counter()
        state = self._memory.state or await load_state(self._db, self.name)
        now = datetime.now(UTC)
        if state.attempt is not None and state.attempt.next_at > now:
            return 0, (state.attempt.next_at - now).total_seconds()
        limit = self._limit
        events = await self._reader.read_events(state.position, limit)
        # A full batch means a backlog: take more next time; a short one, back to normal.
        full = len(events) == limit
        self._limit = min(limit * 2, self._max_batch) if full else self._batch_size
        if not events:
            return 0, None
        parked = await self._parked_streams(state.generation, state.parked_revision)
        batch = _Batch(self.projector, state, events, parked, now)
        plan = await self._commit(batch, state.collections)
        self.timings.observe(time.perf_counter() - started)
        if plan.handled:
            await publish_batch(
                self._redis, self._prefix, self.name, plan.ids, plan.position, after=state.position
            )
        retry_in = backoff(plan.attempt.count).total_seconds() if plan.attempt else None
        return plan.handled, retry_in

    async def _parked_streams(self, generation: int, revision: int) -> set[str]:
        if self._parked is None or self._parked[0] != (generation, revision):
            streams = await parked_streams(self._db, self.name, generation)
            self._parked = ((generation, revision), streams)
        return self._parked[1]

    async def _commit(self, batch: _Batch, collections: dict[str, str]) -> BatchPlan:
        """Fold the batch over its touched documents and commit them with the checkpoint.

        The documents are read inside the transaction: if anything else wrote one of them
        since (`shop projections retry`), MongoDB reports a write conflict and the whole
        callback runs again over fresh reads, so no update is lost.
        """
        addressed = touched(self.projector, batch.events, batch.parked)
        if not addressed.keys:
            plan = batch.plan({}, addressed)
            if not plan.dead_letters:
                # Only the checkpoint moves (events this projection ignores): one
                # document, atomic on its own, so no transaction and its commit round trip.
                await self._fence(batch, plan, None)
                self._memory.remember(batch.after(plan), {}, {})
                return plan

        known, unknown = self._memory.known(addressed.keys)
        read: dict[DocKey, Projected] = {}

        async def commit(session: AsyncClientSession) -> tuple[BatchPlan, dict[DocKey, Projected]]:
            read.clear()
            if unknown:
                read.update(await read_documents(self._db, collections, unknown, session))
            documents = known | read
            plan = batch.plan(documents, addressed)
            changed = {key: documents[key] for key in plan.changed}
            await write_documents(self._db, collections, changed, session)
            for letter in plan.dead_letters:
                await self._db[DEAD_LETTERS].replace_one(
                    {"_id": letter["_id"]}, letter, upsert=True, session=session
                )
            await self._fence(batch, plan, session)
            return plan, changed

        plan, changed = await self._mongo_session().with_transaction(commit)
        self._memory.remember(batch.after(plan), read, changed)
        return plan

    async def _fence(
        self, batch: _Batch, plan: BatchPlan, session: AsyncClientSession | None
    ) -> None:
        """Move the checkpoint, only if this worker still owns it where the batch began."""
        progress: Document = {
            "position": plan.position,
            "attempt": plan.attempt.__dict__ if plan.attempt else None,
            "updated_at": batch.now,
        }
        if plan.error is not None:  # the last error stays on show until another replaces it
            progress |= {"last_error": plan.error, "last_error_at": batch.now}
        state = batch.state
        # The parked revision too: a retry rewrites documents this runner may remember.
        revision = state.parked_revision or {"$in": [0, None]}
        fence = {"_id": self.name, "owner": self._worker, "generation": state.generation,
                 "position": state.position, "parked_revision": revision}  # fmt: skip
        update: Document = {"$set": progress}
        if plan.dead_letters:
            update["$inc"] = {"parked_revision": 1}
        fenced = await self._db[STATE].update_one(fence, update, session=session)
        if fenced.matched_count != 1:
            raise CheckpointMoved(self.name)


@dataclass(frozen=True)
class _Batch:
    """The events of one batch and what their plan depends on besides the documents."""

    projector: Projector
    state: ProjectionState  # as the batch began
    events: list[StoredEvent]
    parked: set[str]
    now: datetime

    def plan(self, documents: dict[DocKey, Projected], addressed: Touched) -> BatchPlan:
        state = self.state
        return plan_batch(
            self.projector, state.generation, self.events, state.position, self.parked,
            state.attempt, self.now, documents, LIVE, addressed,
        )  # fmt: skip

    def after(self, plan: BatchPlan) -> ProjectionState:
        """The state the batch's fenced commit left."""
        return dataclasses.replace(
            self.state,
            position=plan.position,
            attempt=plan.attempt,
            last_error=plan.error or self.state.last_error,
            parked_revision=self.state.parked_revision + bool(plan.dead_letters),
        )
