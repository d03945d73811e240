"""The arq worker: nudge jobs and a per-second catch-up wake the projection supervisor.

`shop worker` runs it with the deployment's Redis, queue and WorkerConfig; the jobs
themselves only wake projection loops, so a lost or duplicated job changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from arq import cron, func
from arq.connections import ArqRedis

from reads.documents import ensure_indexes
from workers.config import WorkerConfig
from workers.log_reader import SharedLogReader
from workers.projectors import PROJECTORS
from workers.runner import ProjectionRunner
from workers.state import load_state
from workers.supervisor import Supervisor
from writes.nudge import RELAY_WAKE_UP_JOB, deserialize_job, serialize_job, wake_channel

log = logging.getLogger(__name__)

Ctx = dict[str, Any]
RECONNECT_PAUSE_S = 1.0
# The wake-up job's name before decision 0070. API processes of the previous release still
# enqueue it during a rolling upgrade, and a worker without it would log every one of them
# as "function not found" and leave its projections to the catch-up: it stays registered
# for one release, then goes.
PREVIOUS_RELAY_WAKE_UP_JOB = "project_events"


async def startup(ctx: Ctx) -> None:
    config: WorkerConfig = ctx["config"]
    redis: ArqRedis = ctx["redis"]
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    # Built by the entry point's bootstrap; a MongoDB outage fails a batch within
    # MONGODB_TIMEOUT_MS, and the loop retries it.
    engine = config.stores.engine()
    reader = SharedLogReader(engine)
    client = config.stores.mongo()
    # In ctx at once: a start-up that fails half way (a store is down) still closes them.
    ctx.update(engine=engine, mongo=client)
    db = client[config.mongodb_database]
    runners = [
        ProjectionRunner(
            p, engine, client, db, redis, config.redis_prefix, worker, config.batch_size, reader
        )
        for p in PROJECTORS.values()
    ]
    supervisor = Supervisor(runners, db, engine, worker, config.lease_ttl_ms)
    ctx["supervisor"] = supervisor
    await supervisor.start()
    for name in PROJECTORS:
        await ensure_indexes(db, (await load_state(db, name)).collections)
    ctx["listener"] = asyncio.create_task(
        _listen_for_wakeups(redis, config.redis_prefix, supervisor)
    )
    log.info("worker %s started", worker)


async def shutdown(ctx: Ctx) -> None:
    if listener := ctx.get("listener"):
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    if supervisor := ctx.get("supervisor"):
        await supervisor.stop()
    if client := ctx.get("mongo"):
        await client.close()
    if engine := ctx.get("engine"):
        await engine.dispose()


async def relay_wake_up(ctx: Ctx) -> None:
    """A commit's nudge, relayed to every worker: another one may hold the projection's lease."""
    await _wake_all(ctx)


async def catch_up(ctx: Ctx) -> None:
    """The periodic catch-up, so a lost nudge delays projection by a second at most."""
    await _wake_all(ctx)


async def _wake_all(ctx: Ctx) -> None:
    ctx["supervisor"].wake()
    config: WorkerConfig = ctx["config"]
    await ctx["redis"].publish(wake_channel(config.redis_prefix), b"wake")


async def _listen_for_wakeups(redis: ArqRedis, prefix: str, supervisor: Supervisor) -> None:
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(wake_channel(prefix))
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        supervisor.wake()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis went away: the per-tick catch-up covers the gap
            log.warning("wake-up channel lost (%s); reconnecting", exc)
            await asyncio.sleep(RECONNECT_PAUSE_S)


class WorkerSettings:
    """arq settings; `shop worker` adds redis_settings, queue_name and ctx={'config': ...}."""

    functions = [
        func(relay_wake_up, name=name, keep_result=0, max_tries=1)
        for name in (RELAY_WAKE_UP_JOB, PREVIOUS_RELAY_WAKE_UP_JOB)
    ]
    cron_jobs = [cron(catch_up, second=set(range(60)), keep_result=0, run_at_startup=True)]
    on_startup = startup
    on_shutdown = shutdown
    job_serializer = serialize_job
    job_deserializer = deserialize_job
    # Commits wake listening workers over pub/sub at once (writes.nudge); the queued job
    # is for a worker that was not listening, so arq's default poll is soon enough, and
    # polling Redis 100 times a second cost the worker a tenth of its CPU.
    poll_delay = 0.5
    keep_result = 0
    max_jobs = 20
    health_check_interval = 60
