"""What every projector shares: the stored event it reads and the writes it returns.

A projector is pure: `apply(event)` turns one event into MongoDB writes on its own
collections, reading nothing. The runner applies a batch's writes and the checkpoint in
one MongoDB transaction, so `$inc` counters are never applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pymongo import InsertOne, UpdateOne

MongoWrite = UpdateOne | InsertOne[dict[str, Any]]


@dataclass(frozen=True)
class StoredEvent:
    """One row of the event log, as projectors see it."""

    position: int
    stream_type: str
    stream_id: str
    stream_version: int
    type: str
    data: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class Write:
    """A write to one document of one of the projector's collections (by logical name)."""

    collection: str
    doc_id: str
    op: MongoWrite


class Projector(Protocol):
    """One read model: its name, the collections it owns and how events change them."""

    name: str
    collections: tuple[str, ...]

    def apply(self, event: StoredEvent) -> list[Write]:
        """The writes `event` causes; [] for events this projector ignores."""
        ...
