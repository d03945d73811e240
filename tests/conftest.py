"""Session fixtures: real PostgreSQL, MongoDB and Redis, each run in its own namespace.

Unset URLs start (or join) the embedded servers under DATA_DIR; set URLs are used
as they are. Every run gets its own PostgreSQL database, MongoDB database and
Redis key prefix, so two runs never see each other's data.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.asgi import create_app
from app.bootstrap import (
    build_bus,
    build_engine,
    build_mongo,
    build_sync_mongo,
    load_settings,
    running_stores,
)
from app.settings import Settings
from tests.pipeline import Pipeline
from tests.support import SIGN_UP, GraphQLClient, ReadyServer, free_port, unique
from writes.commands import CreateAdmin
from writes.db import migrate
from writes.unit_of_work import CommandMetadata

RUN_ID = uuid.uuid4().hex[:10]
PASSWORD = "correct-horse-battery"
TESTS_DIR = Path(__file__).parent
# How long a test's own tasks get to end after its fixtures were torn down (a reader of a
# killed worker's stderr sees the end of its pipe a little later).
TASK_GRACE_S = 10.0


def _started_by_tests(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and Path(code.co_filename).is_relative_to(TESTS_DIR)


@pytest_asyncio.fixture(autouse=True)
async def tasks_end_with_their_test() -> AsyncIterator[None]:
    """Fail a test that leaves a task of its own running, and cancel that task.

    Every test shares the session's event loop and the run's event log: a load generator
    left running by a failed test would go on writing orders into every later test's
    stores, and turn one failure into a dozen. Only coroutines defined under tests/ are
    judged; the app's own long-lived tasks (the served API, its subscription hub) are not.
    """
    before = asyncio.all_tasks()
    yield
    mine = [
        task
        for task in asyncio.all_tasks() - before
        if not task.done() and task is not asyncio.current_task() and _started_by_tests(task)
    ]
    if not mine:
        return
    _, running = await asyncio.wait(mine, timeout=TASK_GRACE_S)
    for task in running:
        task.cancel()
    await asyncio.wait(running, timeout=TASK_GRACE_S)
    if running:
        names = sorted(task.get_coro().__qualname__ for task in running)  # type: ignore[union-attr]
        pytest.fail(f"the test left tasks running (now cancelled): {names}")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_sql(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(_libpq(server_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    """Settings whose URLs all point at running servers (embedded or configured)."""
    with running_stores(load_settings(), postgres=True, mongo=True, redis=True) as settings:
        yield settings


@contextmanager
def own_stores(services: Settings, name: str) -> Iterator[Settings]:
    """A migrated PostgreSQL database, a MongoDB database and a Redis prefix named `name`,
    dropped afterwards."""
    assert services.database_url
    assert services.mongodb_url
    assert services.redis_url
    asyncio.run(_admin_sql(services.database_url, f'CREATE DATABASE "{name}"'))
    database_url = make_url(services.database_url).set(database=name)
    own = services.model_copy(
        update={
            "database_url": database_url.render_as_string(hide_password=False),
            "mongodb_database": name,
            "redis_prefix": name,
            "port": free_port(),
        }
    )
    assert own.database_url is not None
    try:
        migrate(own.database_url)
        yield own
    finally:
        asyncio.run(_admin_sql(services.database_url, f'DROP DATABASE "{name}" WITH (FORCE)'))
        with build_sync_mongo(services, patient=True) as mongo:
            mongo.drop_database(name)
        with Redis.from_url(services.redis_url) as redis:
            # arq keeps job keys under its own prefix, with our job ids inside.
            keys = list(redis.scan_iter(f"*{name}*"))
            if keys:
                redis.delete(*keys)


# The session's fixtures sign up and log in hundreds of customers from 127.0.0.1; the
# throttle tests (tests/security/test_throttles.py) serve apps of their own with small
# limits, so the throttles stay on and proven while the rest of the suite is not held up.
GENEROUS_THROTTLES = {
    "login_attempts_per_account": 100_000,
    "login_attempts_per_address": 100_000,
    "signup_attempts_per_address": 100_000,
}


@pytest.fixture(scope="session")
def settings(services: Settings) -> Iterator[Settings]:
    """This run's own database, Mongo database and Redis prefix, migrated."""
    with own_stores(services, f"shop_test_{RUN_ID}") as run_settings:
        # Every test client connects from 127.0.0.1, and the load tests open hundreds.
        yield run_settings.model_copy(
            update=GENEROUS_THROTTLES | {"ws_max_connections_per_address": 1000}
        )


@pytest_asyncio.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on this run's database, for assertions on the write store."""
    engine = build_engine(settings, pool_size=2, max_overflow=2)
    yield engine
    await engine.dispose()


@dataclass
class Api:
    client: GraphQLClient
    base_url: str
    settings: Settings
    # The served app itself, e.g. for app.state.engine once the lifespan has started.
    app: Starlette


@pytest_asyncio.fixture(scope="session")
async def api(settings: Settings) -> AsyncIterator[Api]:
    """The real app served by uvicorn on a free port, and an HTTP client for it."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=settings.port,
        log_config=None,
        lifespan="on",
        access_log=False,
        ws_max_size=settings.max_body_bytes,
    )
    server = ReadyServer(config)
    serving = asyncio.create_task(server.serve())
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({serving, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if not server.ready.is_set():
        ready.cancel()
        raise RuntimeError("the API server did not start (see the log above)")
    base_url = f"http://127.0.0.1:{settings.port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        yield Api(GraphQLClient(http), base_url, settings, app)
    server.should_exit = True
    await serving


@pytest_asyncio.fixture(scope="session")
async def admin_token(api: Api, engine: AsyncEngine, settings: Settings) -> str:
    """A bearer token of an admin created the way `shop admin create` does."""
    email = f"{unique('admin')}@example.com"
    bus = build_bus(settings, engine, _NoNudge())
    await bus.handle(CreateAdmin(email, "Ada Admin", PASSWORD), CommandMetadata(None, "test"))
    from tests.support import LOG_IN

    data = await api.client.data(LOG_IN, {"input": {"email": email, "password": PASSWORD}})
    token: str = data["logIn"]["token"]
    return token


class _NoNudge:
    async def nudge(self) -> None:
        return None


@dataclass
class Customer:
    id: str
    email: str
    name: str
    token: str


async def sign_up(api: Api, name: str = "Cara Customer") -> Customer:
    email = f"{unique('customer')}@example.com"
    data = await api.client.data(
        SIGN_UP, {"input": {"email": email, "name": name, "password": PASSWORD}}
    )
    result = data["signUp"]
    assert result["__typename"] == "AuthSuccess", result
    return Customer(result["customer"]["id"], email, name, result["token"])


@pytest_asyncio.fixture
async def customer(api: Api) -> Customer:
    """A freshly signed-up customer."""
    return await sign_up(api)


@pytest_asyncio.fixture(scope="session")
async def read_side(settings: Settings, api: Api) -> AsyncIterator[Pipeline]:
    """A `shop worker` projecting into the API's own read model for the whole session."""
    assert settings.redis_url is not None
    mongo = build_mongo(settings, patient=True)
    redis = AsyncRedis.from_url(settings.redis_url)
    pipeline = Pipeline(settings, mongo, mongo[settings.mongodb_database], redis)
    await pipeline.start_worker()
    yield pipeline
    for worker in pipeline.workers:
        await pipeline.kill(worker, signal.SIGTERM)
    await redis.aclose()
    await mongo.close()
