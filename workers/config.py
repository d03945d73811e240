"""What a worker process needs, handed in by the entry point (never read at import).

The worker does not build its own clients: the entry point's bootstrap (app/bootstrap.py)
hands in a StoreFactory, so every engine and MongoDB client of the project is built in
one place, and the tunables come from the settings, with their defaults there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pymongo import AsyncMongoClient
from sqlalchemy.ext.asyncio import AsyncEngine


class StoreFactory(Protocol):
    """Builds the worker's clients; called again after every outage, in the new event loop."""

    def engine(self) -> AsyncEngine: ...

    def mongo(self) -> AsyncMongoClient[dict[str, Any]]: ...


@dataclass(frozen=True)
class WorkerConfig:
    stores: StoreFactory
    mongodb_database: str
    redis_prefix: str
    batch_size: int
    # How long a dead worker's projections stay claimed before another worker takes them
    # over (must exceed the supervisor's 1 s renewal tick).
    lease_ttl_ms: int
