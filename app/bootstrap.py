"""One bootstrap: settings, clients and the message bus, built the same way for every entry
point (the API lifespan, `shop worker`, the CLI commands, the tests and the benches).

Only this module constructs a database engine, a MongoDB client or the message bus
(tests/unit/test_bootstrap.py holds it), so every tunable they take comes from Settings,
with one default there. Importing it loads the drivers: `shop` imports it inside the
commands that connect, never while parsing its arguments (decision 0037).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.process import resolved_settings
from app.settings import Settings
from workers.config import WorkerConfig
from writes.bus import MessageBus
from writes.db import create_engine, ensure_migrated, session_factory
from writes.nudge import ArqNudger, Nudger, arq_redis
from writes.passwords import Passwords

Document = dict[str, Any]


def load_settings(**overrides: Any) -> Settings:
    """The deployment's settings (environment, .env), with `overrides` on top."""
    return Settings(**overrides)


@contextmanager
def running_stores(
    settings: Settings, *, postgres: bool = False, mongo: bool = False, redis: bool = False
) -> Iterator[Settings]:
    """`settings` with the needed URLs set: embedded servers started (or joined) for unset ones."""
    with resolved_settings(settings, postgres=postgres, mongo=mongo, redis=redis) as resolved:
        yield resolved


def build_engine(
    settings: Settings,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    reads_only: bool = False,
) -> AsyncEngine:
    """The PostgreSQL engine; the pool is the settings' unless a caller needs a smaller one."""
    if not settings.database_url:
        raise ValueError("DATABASE_URL is not resolved: build clients inside running_stores()")
    return create_engine(
        settings.database_url,
        settings.db_pool_size if pool_size is None else pool_size,
        settings.db_max_overflow if max_overflow is None else max_overflow,
        reads_only=reads_only,
    )


def build_mongo(settings: Settings, *, patient: bool = False) -> AsyncMongoClient[Document]:
    """The MongoDB client; one timeout for the API and the worker (MONGODB_TIMEOUT_MS).

    A `patient` client waits as long as PyMongo's defaults (30 s to find a server): for
    tests' and benches' own assertions, which must outlast a store they restart.
    """
    return AsyncMongoClient(
        _mongodb_url(settings), tz_aware=True, **_mongo_timeouts(settings, patient)
    )


def build_sync_mongo(settings: Settings, *, patient: bool = False) -> MongoClient[Document]:
    """A blocking MongoDB client, for set-up and clean-up outside an event loop."""
    return MongoClient(_mongodb_url(settings), tz_aware=True, **_mongo_timeouts(settings, patient))


def _mongodb_url(settings: Settings) -> str:
    if not settings.mongodb_url:
        raise ValueError("MONGODB_URL is not resolved: build clients inside running_stores()")
    return settings.mongodb_url


def _mongo_timeouts(settings: Settings, patient: bool) -> dict[str, Any]:
    if patient:
        return {}
    timeout = settings.mongodb_timeout_ms
    return {"serverSelectionTimeoutMS": timeout, "connectTimeoutMS": timeout}


def build_redis(settings: Settings) -> ArqRedis:
    """The Redis client (arq's, JSON jobs); it connects lazily: an outage cannot stop start-up."""
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not resolved: build clients inside running_stores()")
    return arq_redis(settings.redis_url, settings.redis_timeout_ms / 1000)


def build_bus(
    settings: Settings,
    engine: AsyncEngine,
    nudger: Nudger,
    *,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> MessageBus:
    """The command side's one entry point, hashing passwords as the settings allow.

    `sessions` replaces the engine's plain session factory (fault tests delay commits).
    """
    return MessageBus(
        sessions or session_factory(engine), nudger, Passwords(settings.password_hash_concurrency)
    )


def nudger(settings: Settings, redis: ArqRedis) -> ArqNudger:
    """What wakes the projection worker after a commit."""
    return ArqNudger(redis, settings.redis_prefix)


@dataclass
class Clients:
    """The open clients of one process, closed together."""

    settings: Settings
    engine: AsyncEngine
    mongo: AsyncMongoClient[Document]
    redis: ArqRedis
    bus: MessageBus

    @property
    def db(self) -> AsyncDatabase[Document]:
        return self.mongo[self.settings.mongodb_database]

    async def close(self) -> None:
        await self.mongo.close()
        await self.redis.aclose(close_connection_pool=True)
        await self.engine.dispose()


def build_clients(
    settings: Settings, *, pool_size: int | None = None, max_overflow: int | None = None
) -> Clients:
    """Every client, built without connecting (a store outage must not stop start-up)."""
    engine = build_engine(settings, pool_size=pool_size, max_overflow=max_overflow)
    redis = build_redis(settings)
    return Clients(
        settings,
        engine,
        build_mongo(settings),
        redis,
        build_bus(settings, engine, nudger(settings, redis)),
    )


@asynccontextmanager
async def open_clients(
    settings: Settings, *, pool_size: int | None = None, max_overflow: int | None = None
) -> AsyncIterator[Clients]:
    """`build_clients`, closed on the way out."""
    clients = build_clients(settings, pool_size=pool_size, max_overflow=max_overflow)
    try:
        yield clients
    finally:
        await clients.close()


async def check_migrated(settings: Settings) -> None:
    """Raises writes.db.DatabaseNotMigrated, naming the command to run, unless at the head."""
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        await ensure_migrated(engine)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class WorkerStores:
    """Builds a projection worker's clients from the settings (workers.config.StoreFactory)."""

    settings: Settings

    def engine(self) -> AsyncEngine:
        # The worker only reads the write store, and retries a failed read.
        return build_engine(self.settings, pool_size=4, max_overflow=2, reads_only=True)

    def mongo(self) -> AsyncMongoClient[Document]:
        return build_mongo(self.settings)


def worker_config(settings: Settings) -> WorkerConfig:
    """What `shop worker` hands the arq worker: its client factory and its tunables."""
    return WorkerConfig(
        stores=WorkerStores(settings),
        mongodb_database=settings.mongodb_database,
        redis_prefix=settings.redis_prefix,
        batch_size=settings.projection_batch_size,
        lease_ttl_ms=settings.projection_lease_ttl_ms,
    )
