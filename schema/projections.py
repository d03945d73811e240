"""Projection progress, for admins and the projectionProgress subscription."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry

from reads.read_model import describe
from schema.global_ids import derived_id


@strawberry.type
class ProjectionStatus:
    id: strawberry.ID = strawberry.field(description="Unique across all types; one per projection.")
    name: str
    position: str
    head_position: str
    lag_events: int
    lag_ms: int
    state: str
    last_error: str | None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ProjectionStatus:
        """From a projection_state document (lag as the worker last recorded it)."""
        lag_events = int(doc.get("lag_events", 0))
        position = int(doc["position"])
        return cls(
            id=derived_id("ProjectionStatus", doc["_id"]),
            name=doc["_id"],
            position=str(position),
            head_position=str(max(int(doc.get("head_position", 0)), position)),
            lag_events=lag_events,
            lag_ms=int(doc.get("lag_ms", 0)),
            state=describe(doc, lag_events, int(doc.get("parked", 0)), datetime.now(UTC)),
            last_error=doc.get("last_error"),
        )
