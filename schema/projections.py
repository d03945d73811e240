"""Projection progress, for admins and the projectionProgress subscription."""

from __future__ import annotations

import strawberry

from reads import projection_state
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
    def from_status(cls, status: projection_state.ProjectionStatus) -> ProjectionStatus:
        """The GraphQL view of a status (positions as the contract has them: strings)."""
        return cls(
            id=derived_id("ProjectionStatus", status.name),
            name=status.name,
            position=str(status.position),
            head_position=str(status.head_position),
            lag_events=status.lag_events,
            lag_ms=status.lag_ms,
            state=status.state,
            last_error=status.last_error,
        )
