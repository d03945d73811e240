"""`shop worker`: runs the arq projection worker against the resolved stores.

The worker outlives its stores: when Redis, MongoDB or PostgreSQL fail under it, it starts
over in the same process after a backoff pause, as often as it takes (see
workers.outages). `--processes N` runs N such workers as supervised child processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time

from app.process import resolved_settings, terminate
from app.settings import Settings
from app.supervision import Backoff, Child, ProcessSupervisor, joined_env, run_until_signalled

log = logging.getLogger(__name__)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """`shop worker [--processes N]`."""
    if args.processes < 1:
        print("shop: --processes must be at least 1", file=sys.stderr)
        return 2
    with resolved_settings(settings, postgres=True, mongo=True, redis=True) as resolved:
        if args.processes == 1:
            _run_one(resolved)
        else:
            _run_many(resolved, args.processes)
    return 0


def _run_many(settings: Settings, processes: int) -> None:
    env = joined_env(settings)
    argv = [sys.executable, "-m", "app.cli", "worker"]
    supervisor = ProcessSupervisor(
        [Child(f"worker {n}", argv, env) for n in range(1, processes + 1)],
        settings.restart_backoff_ms / 1000,
        settings.restart_backoff_max_ms / 1000,
    )
    run_until_signalled(supervisor.run)


def _run_one(resolved: Settings) -> None:
    """The arq worker in this process, started over after every store outage."""
    import uvloop
    from arq.connections import RedisSettings
    from arq.worker import create_worker
    from redis.exceptions import RedisError

    from app.bootstrap import check_migrated, worker_config
    from workers.job_log import quiet_routine_runs
    from workers.outages import is_outage, store_of
    from workers.settings import WorkerSettings
    from writes.nudge import queue_name

    assert resolved.redis_url is not None
    config = worker_config(resolved)
    redis_settings = RedisSettings.from_dsn(resolved.redis_url)
    queue = queue_name(resolved.redis_prefix)
    quiet_routine_runs(job.name for job in WorkerSettings.cron_jobs)

    async def run_until_stopped() -> BaseException | None:
        """Run the arq worker; the outage that ended it, or None when a signal stopped it."""
        try:
            await check_migrated(resolved)
            await run_arq_worker()
        except asyncio.CancelledError:  # SIGTERM / SIGINT: arq's handler stopped it
            return None
        except Exception as exc:
            if not is_outage(exc):
                raise
            return exc
        return None

    async def run_arq_worker() -> None:
        worker = create_worker(
            WorkerSettings,  # type: ignore[arg-type]
            redis_settings=redis_settings,
            queue_name=queue,
            ctx={"config": config},
        )
        try:
            await worker.async_run()
        finally:
            try:
                await worker.close()
            except (RedisError, OSError, asyncio.CancelledError):
                # close() gave up before the projections' own shutdown (Redis is gone,
                # or it awaited a job the signal cancelled): the leases must still go.
                await WorkerSettings.on_shutdown(worker.ctx)
                with contextlib.suppress(RedisError, OSError):
                    await worker.pool.close(close_connection_pool=True)

    # The event log is the source of truth and Redis only wakes the projections, so after
    # an outage the worker simply starts over, no operator needed.
    backoff = Backoff(resolved.restart_backoff_ms / 1000, resolved.restart_backoff_max_ms / 1000)
    while True:
        started = time.monotonic()
        outage = uvloop.run(run_until_stopped())
        if outage is None:
            return
        pause = backoff.after_run(time.monotonic() - started)
        log.warning(
            "the worker lost %s (%s: %s); it starts over in %.1f s",
            store_of(outage), type(outage).__name__, outage, pause,
        )  # fmt: skip
        signal.signal(signal.SIGTERM, terminate)  # the closed event loop reset it
        time.sleep(pause)
