"""The live read model: which physical collections serve each projection, how far each
projection has got, and what an outage of its store looks like to the layers above.

Both come from the `projection_state` documents the worker keeps. Collection names change
only when a rebuild swaps generations, and the old generation outlives the swap by a
grace period, so a cache of a second is always safe.

MongoDB's driver errors stop here: every entry point of `reads/` that touches the store
runs under `unavailable_on_outage`, so callers above (schema/, app/) handle only
ReadModelUnavailable and never import the driver.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from reads.documents import COLLECTIONS, ensure_indexes
from reads.projection_state import STATE, ProjectionStatus, parked_counts

NAMES_TTL_S = 1.0
Document = dict[str, Any]


class ReadModelUnavailable(Exception):
    """MongoDB cannot be reached (or failed) and this read has no write-store answer."""


@contextmanager
def unavailable_on_outage() -> Iterator[None]:
    """Run a read-model operation, turning the driver's errors into ReadModelUnavailable:
    the one place `reads/` translates them."""
    try:
        yield
    except PyMongoError as exc:
        raise ReadModelUnavailable(f"the read model (MongoDB) cannot be reached: {exc}") from exc


class ReadModel:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self._names: dict[str, tuple[float, dict[str, str]]] = {}

    async def collection(self, projection: str, logical: str) -> AsyncCollection[Document]:
        """The physical collection now serving `logical` of `projection`."""
        cached = self._names.get(projection)
        if cached is None or time.monotonic() - cached[0] > NAMES_TTL_S:
            doc = await self.db[STATE].find_one({"_id": projection}, {"collections": 1})
            names = doc["collections"] if doc else {}
            cached = (time.monotonic(), names)
            self._names[projection] = cached
        return self.db[cached[1].get(logical, logical)]

    def known_collection(self, projection: str, logical: str) -> AsyncCollection[Document] | None:
        """`collection`, when its name is known without asking MongoDB; else None."""
        cached = self._names.get(projection)
        if cached is None or time.monotonic() - cached[0] > NAMES_TTL_S:
            return None
        return self.db[cached[1].get(logical, logical)]

    async def ensure_indexes(self) -> None:
        """Create the read models' indexes on the live collections (idempotent);
        ReadModelUnavailable when MongoDB cannot be reached."""
        with unavailable_on_outage():
            names = {logical: logical for logical in COLLECTIONS}
            async for doc in self.db[STATE].find({}, {"collections": 1}):
                names.update(doc.get("collections", {}))
            await ensure_indexes(self.db, names)

    def forget(self, projection: str) -> None:
        """Drop cached names (a rebuild swapped generations)."""
        self._names.pop(projection, None)

    async def positions(self, projections: tuple[str, ...]) -> dict[str, int]:
        """Each projection's checkpoint (0 for one that never ran)."""
        found = {
            doc["_id"]: int(doc["position"])
            async for doc in self.db[STATE].find(
                {"_id": {"$in": list(projections)}}, {"position": 1}
            )
        }
        return {name: found.get(name, 0) for name in projections}

    async def statuses(self) -> list[ProjectionStatus]:
        """Every projection that has a state document, in name order, with the head and lag
        the worker records each second and the parked events of its live generation."""
        parked = await parked_counts(self.db)
        now = datetime.now(UTC)
        return [
            ProjectionStatus.recorded(doc, parked.get((doc["_id"], doc["generation"]), 0), now)
            async for doc in self.db[STATE].find().sort("_id", 1)
        ]
