"""The PostgreSQL engine, alembic migrations and the refusal to serve an un-migrated database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, ProgrammingError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseNotMigrated(RuntimeError):
    """The schema is missing or behind the code."""


def async_url(url: str) -> str:
    """The SQLAlchemy asyncpg form of a plain `postgresql://` URL."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_engine(
    url: str, pool_size: int = 10, max_overflow: int = 20, *, reads_only: bool = False
) -> AsyncEngine:
    """An asyncpg engine whose connections are checked before use.

    The check is asyncpg's own view of the socket (`_refuse_closed`), not SQLAlchemy's
    pre-ping, which sends BEGIN, an empty query and ROLLBACK on every checkout: three
    round trips, a third of a placeOrder's (docs/decisions/0077).

    JSON columns decode with orjson: the event log's payloads are most of what a worker
    and a rebuild read.

    `reads_only` is for processes that only read and retry a failed read (the worker):
    each statement runs on its own (no BEGIN and ROLLBACK around it) and connections are
    not pinged first, which turns four round trips per read into one. A connection the
    server dropped fails one read; the pool then discards it.
    """
    if reads_only:
        return create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=30,
            isolation_level="AUTOCOMMIT",
            json_deserializer=orjson.loads,
        )
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=30,
        json_deserializer=orjson.loads,
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed is replaced before anyone uses it.

    asyncpg reads every connection's socket all the time, so a server that restarts or
    terminates a backend (its FIN or RST) marks the connection closed at once; the pool
    answers DisconnectionError by discarding it and connecting afresh. A connection that
    breaks without the socket noticing fails the statement it was given, as it would
    have failed the pre-ping, and SQLAlchemy invalidates it.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("PostgreSQL closed this pooled connection")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (payloads are built from them)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def alembic_config(url: str) -> Config:
    """Alembic configured in code, so no alembic.ini has to be found on disk."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = async_url(url)
    return config


def migrate(url: str) -> None:
    """Bring the database to the newest revision (blocking; call outside an event loop)."""
    command.upgrade(alembic_config(url), "head")


def migration_head() -> str | None:
    """The newest migration revision the code knows."""
    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None before the first migration)."""
    try:
        async with engine.connect() as conn:
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except ProgrammingError:
        return None
    return None if revision is None else str(revision)


async def ensure_migrated(engine: AsyncEngine) -> None:
    """Raise DatabaseNotMigrated, naming the command to run, unless the schema is current."""
    head = migration_head()
    current = await current_revision(engine)
    if current != head:
        raise DatabaseNotMigrated(
            f"the database is at migration {current or 'none'}, the code needs {head}: "
            "run `shop migrate` (or `make dev`, which migrates) and start again"
        )
