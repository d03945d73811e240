"""Where each projection stands: position, head, lag, state, parked events, last error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.read_model import describe
from workers.log_reader import backlog, lag_ms, log_head
from workers.projectors import PROJECTORS
from workers.state import DEAD_LETTERS, STATE

Document = dict[str, Any]


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head_position: int
    lag_events: int
    lag_ms: int
    state: str
    parked: int
    last_error: str | None
    owner: str | None


async def projection_statuses(
    engine: AsyncEngine, db: AsyncDatabase[Document]
) -> list[ProjectionStatus]:
    """Fresh figures from both stores, for the CLI and operators."""
    head, _ = await log_head(engine)
    now = datetime.now(UTC)
    statuses = []
    for name in PROJECTORS:
        doc = await db[STATE].find_one({"_id": name})
        position = doc["position"] if doc else 0
        generation = doc["generation"] if doc else 0
        lag_events, oldest = await backlog(engine, position)
        parked = await db[DEAD_LETTERS].count_documents(
            {"projection": name, "generation": generation}
        )
        statuses.append(
            ProjectionStatus(
                name=name,
                position=position,
                head_position=head,
                lag_events=lag_events,
                lag_ms=lag_ms(oldest),
                state=describe(doc, lag_events, parked, now),
                parked=parked,
                last_error=doc.get("last_error") if doc else None,
                owner=doc.get("owner") if doc else None,
            )
        )
    return statuses
