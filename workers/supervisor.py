"""Runs the projections this worker holds leases for, and shares them fairly with others.

Every `TICK` the worker renews its leases, takes free or expired ones up to its fair
share (projections / live workers) and gives back extras, so adding workers spreads the
projections and a dead worker's leases pass on within LEASE_TTL + TICK. Each projection
loop drains its backlog when woken (a nudge) or on every tick (the catch-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.projection_state import STATE
from workers.log_reader import backlog, lag_ms, log_head
from workers.runner import CheckpointMoved, ProjectionRunner
from workers.state import (
    acquire_lease,
    beat,
    ensure_state,
    forget_worker,
    live_workers,
    load_state,
    release_lease,
)

log = logging.getLogger(__name__)

TICK_S = 1.0
ERROR_PAUSE_S = 1.0
RELOAD_PAUSE_S = 0.05
STOP_BUDGET_S = 3.0
Document = dict[str, Any]


class Supervisor:
    def __init__(
        self,
        runners: list[ProjectionRunner],
        db: AsyncDatabase[Document],
        engine: AsyncEngine,
        worker: str,
        lease_ttl_ms: int,
    ) -> None:
        if lease_ttl_ms <= TICK_S * 1000:
            raise ValueError(f"a lease must outlive the {TICK_S} s renewal tick: {lease_ttl_ms} ms")
        self.worker = worker
        self._lease_ttl_ms = lease_ttl_ms
        self.owned: set[str] = set()
        # Projections whose loop is between batches of one drain (their lease must stay).
        self._busy: set[str] = set()
        self._runners = {runner.name: runner for runner in runners}
        self._db = db
        self._engine = engine
        self._wakeups = {name: asyncio.Event() for name in self._runners}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._end_dead_owners_transactions()
        for runner in self._runners.values():
            await ensure_state(self._db, runner.projector)
        await self._share()
        self._tasks = [asyncio.create_task(self._heartbeat(), name="projection-heartbeat")]
        self._tasks += [
            asyncio.create_task(self._loop(name), name=f"projection-{name}")
            for name in self._runners
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Giving leases back only speeds up the hand-over; with MongoDB unreachable the
        # leases simply expire, so shutdown must not wait on it.
        try:
            async with asyncio.timeout(STOP_BUDGET_S):
                for name in list(self.owned):
                    await release_lease(self._db, name, self.worker)
                await forget_worker(self._db, self.worker)
        except (TimeoutError, PyMongoError) as exc:
            log.warning("leases not released on shutdown (they expire): %s", exc)
        self.owned.clear()
        for runner in self._runners.values():
            with contextlib.suppress(PyMongoError):
                await runner.close()

    def wake(self) -> None:
        """New events may be waiting: every owned projection drains now."""
        for event in self._wakeups.values():
            event.set()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self._share()
                await self._record_lag()
            except Exception:
                log.exception("projection heartbeat failed")

    async def _share(self) -> None:
        await beat(self._db, self.worker)
        await self._end_dead_owners_transactions()
        fair = math.ceil(len(self._runners) / await live_workers(self._db, self._lease_ttl_ms))
        for name in self._runners:
            if name in self.owned:
                if not await acquire_lease(self._db, name, self.worker, self._lease_ttl_ms):
                    log.warning("lost the lease of %s", name)
                    self.owned.discard(name)
            elif len(self.owned) < fair and await acquire_lease(
                self._db, name, self.worker, self._lease_ttl_ms
            ):
                await self._db[STATE].update_one(
                    {"_id": name, "owner": self.worker},
                    {"$set": {"owner_session": self._runners[name].session_id}},
                )
                log.info("worker %s now projects %s", self.worker, name)
                self._runners[name].forget()  # others may have projected since it last did
                self.owned.add(name)
                self._wakeups[name].set()
        for name in sorted(self.owned)[fair:]:
            # A batch in flight would fail its fence if the lease went now: give it back
            # on a later tick. Discarding first stops the loop from starting another.
            if name in self._busy:
                continue
            self.owned.discard(name)
            await release_lease(self._db, name, self.worker)

    async def _end_dead_owners_transactions(self) -> None:
        """End the MongoDB transactions that workers whose leases expired left open.

        A worker killed mid-batch leaves its transaction open on the server, holding the
        locks of what it wrote (the checkpoint included) until MongoDB's
        transactionLifetimeLimitSeconds (60 s by default): until then the lease could not
        be taken over, nor the documents written, nor the collections dropped. Its
        runner's session id sits beside the lease; a read never waits on those locks.
        """
        expired = self._db[STATE].find(
            {
                "owner": {"$nin": [None, self.worker]},
                "owner_session": {"$ne": None},
                "$expr": {"$lt": ["$lease_until", "$$NOW"]},
            },
            {"owner_session": 1},
        )
        sessions = [{"id": doc["owner_session"]} async for doc in expired]
        if sessions:
            await self._db.client.admin.command("killSessions", sessions)

    async def _record_lag(self) -> None:
        """Head, lag and batch timings beside the checkpoint, so the read side (and the
        API's /metrics) can show them from MongoDB."""
        head, _ = await log_head(self._engine)
        for name in self.owned:
            state = await load_state(self._db, name)
            lag_events, oldest = await backlog(self._engine, state.position)
            update: Document = {
                "$set": {
                    "head_position": head,
                    "lag_events": lag_events,
                    "lag_ms": lag_ms(oldest),
                }
            }
            if timings := self._runners[name].timings.flush():
                update["$inc"] = timings
            await self._db[STATE].update_one({"_id": name}, update)
        for name, runner in self._runners.items():  # batches run just before a lease went
            if name not in self.owned and (timings := runner.timings.flush()):
                await self._db[STATE].update_one({"_id": name}, {"$inc": timings})

    async def _loop(self, name: str) -> None:
        runner, wakeup = self._runners[name], self._wakeups[name]
        timeout: float = TICK_S
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands
            # just after a wake-up, and stop() would then await this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wakeup.wait()
            wakeup.clear()
            timeout = TICK_S
            if name not in self.owned:
                continue
            self._busy.add(name)
            try:
                while name in self.owned:
                    handled, retry_in = await runner.run_batch()
                    if retry_in is not None:
                        timeout = min(TICK_S, retry_in)
                    if not handled or retry_in is not None:
                        break
            except CheckpointMoved:
                # A rebuild swapped generations, or the lease passed on: reload and go on
                # (the heartbeat drops projections whose lease is gone).
                log.info("%s: the checkpoint moved under the batch; reloading", name)
                timeout = RELOAD_PAUSE_S
            except Exception:
                log.exception("%s: batch failed; retrying", name)
                timeout = ERROR_PAUSE_S
            finally:
                self._busy.discard(name)
