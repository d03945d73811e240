"""Per-projection bookkeeping in MongoDB: checkpoint, generation, lease, retries, dead letters.

The checkpoint lives beside the documents so both commit in one transaction. The lease
(owner + lease_until, compared with the server's clock) lets any number of workers run
while one at a time projects each projection; the batch commit is fenced on it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from workers.projection import Projector

STATE = "projection_state"
DEAD_LETTERS = "projection_dead_letters"
WORKERS = "projection_workers"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Document = dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    """A failing event being retried with backoff."""

    position: int
    count: int
    error: str
    next_at: datetime


@dataclass(frozen=True)
class ProjectionState:
    name: str
    position: int
    generation: int
    collections: dict[str, str]
    owner: str | None
    attempt: Attempt | None
    last_error: str | None
    rebuilding: bool
    # Bumped whenever this projection's dead letters change (parking, retry).
    parked_revision: int = 0

    @classmethod
    def from_document(cls, doc: Document) -> ProjectionState:
        attempt = doc.get("attempt")
        return cls(
            name=doc["_id"],
            position=doc["position"],
            generation=doc["generation"],
            collections=doc["collections"],
            owner=doc.get("owner"),
            attempt=Attempt(**attempt) if attempt else None,
            last_error=doc.get("last_error"),
            rebuilding=bool(doc.get("rebuilding")),
            parked_revision=doc.get("parked_revision", 0),
        )


def physical_names(projector: Projector, generation: int) -> dict[str, str]:
    """Generation 0 uses the plain names; a rebuild builds the next generation beside it."""
    suffix = "" if generation == 0 else f"__g{generation}"
    return {logical: f"{logical}{suffix}" for logical in projector.collections}


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
    await db[WORKERS].delete_one({"_id": worker})


async def parked_streams(db: AsyncDatabase[Document], name: str, generation: int) -> set[str]:
    """Streams of this projection with parked events: their later events park too."""
    streams = await db[DEAD_LETTERS].distinct(
        "stream_id", {"projection": name, "generation": generation}
    )
    return {str(stream) for stream in streams}
