"""The worker's operations on a projection's state: create and load it, hold its lease,
record heartbeats, find parked streams. The names and shapes are reads/projection_state.py's.

The checkpoint lives beside the documents so both commit in one transaction. The lease
(owner + lease_until, compared with the server's clock) lets any number of workers run
while one at a time projects each projection; the batch commit is fenced on it.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from reads.projection_state import (
    DEAD_LETTERS,
    STATE,
    WORKERS,
    ProjectionState,
    physical_names,
)
from workers.projection import Projector

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Document = dict[str, Any]


async def ensure_state(db: AsyncDatabase[Document], projector: Projector) -> None:
    """Create the projection's state document if it does not exist yet."""
    # Another worker may create it at the same moment: theirs is as good as ours.
    with contextlib.suppress(DuplicateKeyError):
        await db[STATE].update_one(
            {"_id": projector.name},
            {
                "$setOnInsert": {
                    "position": 0,
                    "generation": 0,
                    "collections": physical_names(projector, 0),
                    "owner": None,
                    "lease_until": EPOCH,
                    "attempt": None,
                    "last_error": None,
                }
            },
            upsert=True,
        )


async def load_state(db: AsyncDatabase[Document], name: str) -> ProjectionState:
    """The projection's state document, typed; LookupError when it was never created."""
    doc = await db[STATE].find_one({"_id": name})
    if doc is None:
        raise LookupError(f"no projection named {name!r}")
    return ProjectionState.from_document(doc)


async def acquire_lease(db: AsyncDatabase[Document], name: str, worker: str, ttl_ms: int) -> bool:
    """Take or renew the lease when it is ours, free or expired."""
    doc = await db[STATE].find_one_and_update(
        {
            "_id": name,
            "$or": [
                {"owner": worker},
                {"owner": None},
                {"$expr": {"$lt": ["$lease_until", "$$NOW"]}},
            ],
        },
        [{"$set": {"owner": worker, "lease_until": {"$add": ["$$NOW", ttl_ms]}}}],
    )
    return doc is not None


async def release_lease(db: AsyncDatabase[Document], name: str, worker: str) -> None:
    """Give the lease back if it is still ours."""
    await db[STATE].update_one(
        {"_id": name, "owner": worker}, {"$set": {"owner": None, "lease_until": EPOCH}}
    )


async def beat(db: AsyncDatabase[Document], worker: str) -> None:
    """Record that this worker is alive (for sharing projections fairly)."""
    await db[WORKERS].update_one({"_id": worker}, [{"$set": {"seen_at": "$$NOW"}}], upsert=True)


async def live_workers(db: AsyncDatabase[Document], within_ms: int) -> int:
    """Workers seen within the window (at least 1: the caller)."""
    count = await db[WORKERS].count_documents(
        {"$expr": {"$gt": ["$seen_at", {"$subtract": ["$$NOW", within_ms]}]}}
    )
    return max(count, 1)


async def forget_worker(db: AsyncDatabase[Document], worker: str) -> None:
    """Drop a stopping worker's heartbeat, so the others take its share at once."""
    await db[WORKERS].delete_one({"_id": worker})


async def parked_streams(db: AsyncDatabase[Document], name: str, generation: int) -> set[str]:
    """Streams of this projection with parked events: their later events park too."""
    streams = await db[DEAD_LETTERS].distinct(
        "stream_id", {"projection": name, "generation": generation}
    )
    return {str(stream) for stream in streams}
