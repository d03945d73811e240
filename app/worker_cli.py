"""`shop worker`: runs the arq projection worker against the resolved stores."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time

from app.services import check_migrated, resolved_settings, terminate
from app.settings import Settings

# How long `shop worker` waits before starting over after Redis became unreachable.
WORKER_RESTART_PAUSE_S = 1.0


def run(settings: Settings, _: argparse.Namespace) -> int:
    """`shop worker`: the arq projection worker, started over whenever Redis comes back."""
    import uvloop
    from arq.connections import RedisSettings
    from arq.worker import create_worker
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from workers.config import WorkerConfig
    from workers.settings import WorkerSettings
    from writes.nudge import queue_name

    with resolved_settings(settings, postgres=True, mongo=True, redis=True) as resolved:
        assert resolved.database_url is not None
        assert resolved.mongodb_url is not None
        assert resolved.redis_url is not None
        asyncio.run(check_migrated(resolved.database_url))
        config = WorkerConfig(
            database_url=resolved.database_url,
            mongodb_url=resolved.mongodb_url,
            mongodb_database=resolved.mongodb_database,
            redis_prefix=resolved.redis_prefix,
            batch_size=resolved.projection_batch_size,
            lease_ttl_ms=resolved.projection_lease_ttl_ms,
        )
        redis_settings = RedisSettings.from_dsn(resolved.redis_url)
        queue = queue_name(resolved.redis_prefix)

        async def run_until_stopped() -> bool:
            """Run the arq worker; True when it stopped because Redis became unreachable."""
            worker = create_worker(
                WorkerSettings,  # type: ignore[arg-type]
                redis_settings=redis_settings,
                queue_name=queue,
                ctx={"config": config},
            )
            try:
                await worker.async_run()
            except asyncio.CancelledError:  # SIGTERM / SIGINT: arq's handler stopped it
                return False
            except (RedisConnectionError, RedisTimeoutError) as exc:
                logging.getLogger("app.cli").warning(
                    "Redis unreachable (%s); the worker starts over in %.0f s",
                    exc, WORKER_RESTART_PAUSE_S,
                )  # fmt: skip
                return True
            finally:
                try:
                    await worker.close()
                except (RedisError, OSError, asyncio.CancelledError):
                    # close() gave up before the projections' own shutdown (Redis is gone,
                    # or it awaited a job the signal cancelled): the leases must still go.
                    await WorkerSettings.on_shutdown(worker.ctx)
                    with contextlib.suppress(RedisError, OSError):
                        await worker.pool.close(close_connection_pool=True)
            return False

        # arq's poll loop ends when Redis goes away. Redis only wakes the projections
        # (the event log is the source of truth), so the worker starts over, no operator needed.
        while uvloop.run(run_until_stopped()):
            signal.signal(signal.SIGTERM, terminate)  # the closed event loop reset it
            time.sleep(WORKER_RESTART_PAUSE_S)
    return 0
