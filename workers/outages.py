"""Store outages, told apart from bugs: the worker starts over after one, it never exits.

Whatever Redis, MongoDB or PostgreSQL raise while unreachable, restarting or failing over
is an outage: arq's poll loop ends on any Redis error (a dropped connection inside a
WATCH surfaces as redis' WatchError, a restarting server as BusyLoadingError), and the
projections' start-up ends on any MongoDB or PostgreSQL error. The event log is the source
of truth, so starting over loses nothing. Anything else is a bug, and ends the process for
its supervisor to restart.
"""

from __future__ import annotations

import asyncpg
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

STORE_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    PyMongoError,
    DBAPIError,
    PoolTimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # Socket errors a driver let through unwrapped, and timeouts of our own around store calls.
    OSError,
    TimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether exc is a store being unreachable or failing, rather than a bug."""
    return isinstance(exc, STORE_ERRORS)


def store_of(exc: BaseException) -> str:
    """The store an outage came from, for the log."""
    if isinstance(exc, RedisError):
        return "Redis"
    if isinstance(exc, PyMongoError):
        return "MongoDB"
    if isinstance(
        exc, DBAPIError | PoolTimeoutError | asyncpg.PostgresError | asyncpg.InterfaceError
    ):
        return "PostgreSQL"
    return "a store"
