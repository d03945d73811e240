"""/readyz under real outages: PostgreSQL, MongoDB or Redis stopped, then started again.

Each test runs a server of its own (embedded PostgreSQL or MongoDB under its tmp dir, a
redis-server binary) and an API on it, stops that server and waits for /readyz to say
which check failed, then starts it again on the same address and waits for "ready". The
projections check is left out of these (a long READINESS_STOPPED_GRACE_S, parked events
allowed): no worker runs, and other tests of the session may have parked events.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from app.asgi import create_app
from app.embedded import embedded_services
from app.settings import Settings
from tests.faults.test_mongo_down import OwnMongo
from tests.faults.test_redis_down import OwnRedis
from tests.support import free_port, readyz, serving, until
from writes.db import migrate

# "Within a few seconds": the check's own timeout plus room for a loaded two-core machine.
NOT_READY_WITHIN_S = 15
# A client reconnects on its next use; a restarted server may take a while to answer.
READY_AGAIN_WITHIN_S = 60
NO_WORKER_HERE = {"readiness_stopped_grace_s": 3600.0, "readiness_max_parked_events": 10**9}


class OwnPostgres:
    """An embedded PostgreSQL of the test's own under `data_dir`, migrated, to stop and
    start again; it keeps its socket, so the URL stays the same."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = ""
        self._stack: contextlib.ExitStack | None = None

    async def start(self) -> None:
        def start() -> contextlib.ExitStack:
            stack = contextlib.ExitStack()
            urls = stack.enter_context(
                embedded_services(self.data_dir, postgres=True, mongo=False, redis=False)
            )
            assert urls.database_url is not None
            assert self.url in ("", urls.database_url)
            self.url = urls.database_url
            migrate(self.url)
            return stack

        self._stack = await asyncio.to_thread(start)

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await asyncio.to_thread(stack.close)


@pytest_asyncio.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[OwnPostgres]:
    postgres = OwnPostgres(tmp_path / "services")
    await postgres.start()
    try:
        yield postgres
    finally:
        await postgres.stop()
        await asyncio.to_thread(shutil.rmtree, postgres.data_dir, True)


async def outage(
    http: httpx.AsyncClient,
    stop: Callable[[], Awaitable[None]],
    start: Callable[[], Awaitable[None]],
    failing: set[str],
) -> dict[str, Any]:
    """Ready, then not ready with exactly `failing` checks down, then ready again; the
    body /readyz gave during the outage."""
    status, body = await readyz(http)
    assert status == 200, body
    await stop()
    status, body = await until(
        lambda: readyz(http), lambda answer: answer[0] == 503, NOT_READY_WITHIN_S
    )
    assert body["status"] == "not_ready", body
    assert {name for name, check in body["checks"].items() if not check["ok"]} == failing, body
    await start()
    status, back = await until(
        lambda: readyz(http), lambda answer: answer[0] == 200, READY_AGAIN_WITHIN_S
    )
    assert back["status"] == "ready", back
    result: dict[str, Any] = body
    return result


async def test_readyz_follows_postgresql(settings: Settings, own_postgres: OwnPostgres) -> None:
    port = free_port()
    own = settings.model_copy(
        update={"database_url": own_postgres.url, "port": port, **NO_WORKER_HERE}
    )
    async with serving(create_app(own), port) as client:
        body = await outage(client.http, own_postgres.stop, own_postgres.start, {"postgres"})
    print("\nPostgreSQL down:", body["checks"]["postgres"]["detail"])


async def test_readyz_follows_mongodb(settings: Settings, tmp_path: Path) -> None:
    mongo = OwnMongo(tmp_path / "services")
    await mongo.start()
    port = free_port()
    own = settings.model_copy(update={"mongodb_url": mongo.url, "port": port, **NO_WORKER_HERE})
    try:
        async with serving(create_app(own), port) as client:
            try:
                # The projections check reads MongoDB too.
                body = await outage(
                    client.http, mongo.stop, mongo.start, {"mongodb", "projections"}
                )
            finally:
                # PyMongo leaks a socket if its client closes while the server is down
                # (see tests/faults/test_mongo_down.py).
                if not mongo.running:
                    await mongo.start()
    finally:
        await mongo.stop()
        await asyncio.to_thread(shutil.rmtree, mongo.data_dir, True)
    print("\nMongoDB down:", body["checks"]["mongodb"]["detail"])


async def test_readyz_follows_redis_and_never_hangs_on_it(
    settings: Settings, tmp_path: Path
) -> None:
    redis = OwnRedis(tmp_path, free_port())
    await redis.start()
    port = free_port()
    # A check timeout shorter than the API's Redis socket timeout (2 s): it answers first.
    own = settings.model_copy(
        update={
            "redis_url": redis.url,
            "port": port,
            "readiness_check_timeout_ms": 500,
            **NO_WORKER_HERE,
        }
    )
    try:
        async with serving(create_app(own), port) as client:
            http = client.http
            # A Redis that accepts connections but never answers: the check gives up.
            assert redis.process is not None
            redis.process.send_signal(signal.SIGSTOP)
            try:
                status, body = await readyz(http)
            finally:
                redis.process.send_signal(signal.SIGCONT)
            assert status == 503, body
            assert body["checks"]["redis"] == {"ok": False, "detail": "no answer within 500 ms"}
            await until(lambda: readyz(http), lambda answer: answer[0] == 200, READY_AGAIN_WITHIN_S)

            body = await outage(http, redis.kill, redis.start, {"redis"})
    finally:
        await redis.kill()
    print("\nRedis down:", body["checks"]["redis"]["detail"])
