"""An isolated read side for one test: its own MongoDB database and Redis prefix over the
run's event log, with real `shop worker` processes that the test can start, kill and wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.bootstrap import build_bus, build_mongo, load_settings
from app.settings import Settings
from reads.projection_state import STATE
from tests.support import run_command, unique
from workers.notifications import projections_channel
from workers.projection import Projector
from workers.projectors import PROJECTORS
from workers.runner import ProjectionRunner
from workers.status import projection_statuses
from workers.verify import verify_projection
from writes.commands import (
    Actor,
    CancelOrder,
    CreateProduct,
    OrderLineRequest,
    PlaceOrder,
    Role,
    ShipOrder,
    SignUp,
)
from writes.nudge import ArqNudger, arq_redis
from writes.unit_of_work import CommandMetadata
from writes.views import Committed

Document = dict[str, Any]
ALL = tuple(PROJECTORS)
STOP_GRACE_S = 20


@dataclass
class Pipeline:
    settings: Settings
    mongo: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    redis: Redis
    workers: list[asyncio.subprocess.Process] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        s = self.settings
        assert s.database_url is not None
        assert s.mongodb_url is not None
        assert s.redis_url is not None
        return os.environ | {
            "DATABASE_URL": s.database_url,
            "MONGODB_URL": s.mongodb_url,
            "REDIS_URL": s.redis_url,
            "MONGODB_DATABASE": s.mongodb_database,
            "REDIS_PREFIX": s.redis_prefix,
            "LOG_LEVEL": "INFO",
        }

    async def start_worker(
        self, startup_budget_s: float = 30, extra_env: Mapping[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        """A `shop worker` process, returned once it reports that it started.

        `extra_env` adds variables, e.g. PROJECTION_LEASE_TTL_MS / PROJECTION_BATCH_SIZE.
        """
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.cli", "worker",
            env=self.env() | dict(extra_env or {}),
            stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert worker.stderr is not None
        deadline = time.monotonic() + startup_budget_s
        seen: list[str] = []
        while True:
            line = await asyncio.wait_for(worker.stderr.readline(), deadline - time.monotonic())
            if not line:
                raise AssertionError("the worker exited early:\n" + "".join(seen[-20:]))
            seen.append(line.decode(errors="replace"))
            if '"message":"worker ' in seen[-1] and 'started"' in seen[-1]:
                break
        self.workers.append(worker)
        asyncio.get_running_loop().create_task(_drain(worker.stderr))
        return worker

    async def kill(self, worker: asyncio.subprocess.Process, how: int = signal.SIGKILL) -> None:
        """Signal the worker and reap it; a worker that ignores SIGTERM is killed after a while."""
        if worker.returncode is None:
            worker.send_signal(how)
            try:
                await asyncio.wait_for(worker.wait(), STOP_GRACE_S)
            except TimeoutError:
                worker.kill()
                await worker.wait()
                raise AssertionError(
                    f"worker {worker.pid} ignored {how!r} for {STOP_GRACE_S} s"
                ) from None

    async def positions(self) -> dict[str, int]:
        return {doc["_id"]: doc["position"] async for doc in self.db[STATE].find()}

    async def wait_until_projected(
        self, position: int, names: Iterable[str] = ALL, budget_s: float = 60
    ) -> None:
        """Wait for batch notifications until every named projection reached `position`."""
        wanted = tuple(names)
        deadline = time.monotonic() + budget_s
        async with self.redis.pubsub() as pubsub:
            await pubsub.subscribe(projections_channel(self.settings.redis_prefix))
            while True:
                current = await self.positions()
                if all(current.get(name, 0) >= position for name in wanted):
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"projections at {current}, wanted {position}")
                # A message means a batch committed; the timeout re-reads in case one was missed.
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 1.0))

    async def verify(self, engine: AsyncEngine, names: Iterable[str] = ALL) -> dict[str, list[str]]:
        """Differences between each projection and the write store (empty lists when equal)."""
        found = {}
        for name in names:
            state = await self.db[STATE].find_one({"_id": name})
            assert state is not None, f"{name} never started"
            async with AsyncSession(engine) as session:
                found[name] = await verify_projection(self.db, state["collections"], session, name)
        return found


@asynccontextmanager
async def isolated_pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    name = unique("rs").replace("-", "_")
    own = settings.model_copy(
        update={
            "mongodb_database": f"{settings.mongodb_database}_{name}"[:60],
            "redis_prefix": f"{settings.redis_prefix}:{name}",
        }
    )
    assert own.redis_url is not None
    mongo = build_mongo(own, patient=True)
    redis = Redis.from_url(own.redis_url)
    pipeline = Pipeline(own, mongo, mongo[own.mongodb_database], redis)
    try:
        yield pipeline
    finally:
        for worker in pipeline.workers:
            await pipeline.kill(worker, signal.SIGTERM)
        await mongo.drop_database(own.mongodb_database)
        keys = [key async for key in redis.scan_iter(f"{own.redis_prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await mongo.close()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@dataclass
class WorkerLog:
    """A worker's stderr, line by line, so a test can wait for what the process reports."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    closed: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    async def wait_for(self, *needles: str, after: int = 0, budget_s: float = 30) -> int:
        """The index of the first line from `after` on that contains every needle."""
        deadline = time.monotonic() + budget_s
        while True:
            for index in range(after, len(self.lines)):
                if all(needle in self.lines[index] for needle in needles):
                    return index
            after = len(self.lines)
            if self.closed:
                raise AssertionError(f"the worker exited without logging {needles}:\n{self.tail()}")
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no log line with {needles} within {budget_s} s:\n{self.tail()}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def tail(self, count: int = 30) -> str:
        return "".join(self.lines[-count:])

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode(errors="replace"))
            self._changed.set()
        self.closed = True
        self._changed.set()


async def start_logged_worker(pipeline: Pipeline, startup_budget_s: float = 30) -> WorkerLog:
    """`Pipeline.start_worker`, keeping every line the worker logs (see WorkerLog)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker",
        env=pipeline.env(), stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stderr is not None
    log = WorkerLog(process)
    log._reader = asyncio.get_running_loop().create_task(log._read(process.stderr))
    pipeline.workers.append(process)
    await log.wait_for('"message":"worker ', 'started"', budget_s=startup_budget_s)
    return log


async def shop(pipeline: Pipeline, *args: str, budget_s: float = 60) -> tuple[int, str, str]:
    """Run `shop ARGS...` against the pipeline's stores: (exit code, stdout, stderr)."""
    return await run_command(
        sys.executable, "-m", "app.cli", *args, env=pipeline.env(), budget_s=budget_s
    )


class Writer:
    """Commands through the real MessageBus (as the API sends them), nudging over arq."""

    def __init__(self, engine: AsyncEngine, redis_url: str, redis_prefix: str) -> None:
        self.redis = arq_redis(redis_url, timeout_s=1.0)
        # The deployment's settings, for the bus's password hashing.
        self.bus = build_bus(load_settings(), engine, ArqNudger(self.redis, redis_prefix))
        self.admin = Actor(uuid.uuid4(), Role.ADMIN)

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)

    async def sign_up(self) -> Actor:
        email = f"{unique('fault')}@example.com"
        committed = await self.bus.handle(
            SignUp(email, "Fay Fault", "correct-horse-battery"), self._meta(None)
        )
        return Actor(committed.value.id, Role.CUSTOMER)

    async def product(self, stock: int = 1000, price_cents: int = 500) -> str:
        command = CreateProduct(unique("SKU"), "Fault mug", "", price_cents, stock)
        committed = await self.bus.handle(command, self._meta(self.admin))
        return str(committed.value.id)

    async def place(self, actor: Actor, product_id: str, quantity: int = 1) -> Committed[Any]:
        command = PlaceOrder((OrderLineRequest(product_id, quantity),))
        return await self.bus.handle(command, self._meta(actor))

    async def ship(self, order_id: str) -> Committed[Any]:
        return await self.bus.handle(ShipOrder(order_id), self._meta(self.admin))

    async def cancel(self, actor: Actor, order_id: str) -> Committed[Any]:
        return await self.bus.handle(CancelOrder(order_id), self._meta(actor))

    @staticmethod
    def _meta(actor: Actor | None) -> CommandMetadata:
        return CommandMetadata(actor, unique("fault-test"))


@dataclass(frozen=True)
class StatusRow:
    """One line of `shop projections status`."""

    name: str
    position: int
    head: int
    lag_events: int
    lag_ms: int
    state: str
    parked: int
    owner: str | None
    last_error: str


async def projections_status(pipeline: Pipeline) -> dict[str, StatusRow]:
    """`shop projections status`, run as an operator would, parsed by projection name."""
    code, out, err = await shop(pipeline, "projections", "status")
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split()[:7] == ["projection", "position", "head", "lag", "lag", "ms", "state"]
    rows = {}
    for line in lines:
        name, position, head, lag, lag_ms, state, parked, owner, *error = line.split(None, 8)
        rows[name] = StatusRow(
            name, int(position), int(head), int(lag), int(lag_ms), state, int(parked),
            None if owner == "-" else owner, error[0] if error else "",
        )  # fmt: skip
    return rows


async def watch_states(
    engine: AsyncEngine, pipeline: Pipeline, name: str, stop: asyncio.Event
) -> list[str]:
    """Each state `shop projections status` would show for `name`, in order, until `stop`.

    In-process (workers.status, what the CLI prints), so short-lived states show too. The
    last reading starts after `stop`, so it shows what the caller waited for.
    """
    states: list[str] = []
    while True:
        last = stop.is_set()
        for status in await projection_statuses(engine, pipeline.db):
            if status.name == name and (not states or states[-1] != status.state):
                states.append(status.state)
        if last:
            return states


def live_runner(
    engine: AsyncEngine, pipeline: Pipeline, projector: Projector, worker: str
) -> ProjectionRunner:
    """An in-process runner of `projector` as `worker`, so a test sets races up instead of
    hoping for them."""
    return ProjectionRunner(
        projector, engine, pipeline.mongo, pipeline.db, pipeline.redis,
        pipeline.settings.redis_prefix, worker, pipeline.settings.projection_batch_size,
    )  # fmt: skip


async def drain(runner: ProjectionRunner) -> None:
    """Run batches until one finds no event; a refused batch (CheckpointMoved) fails."""
    while (await runner.run_batch())[0]:
        pass
