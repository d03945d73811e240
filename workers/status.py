"""Where each projection stands, with its lag measured now in PostgreSQL (for the CLI and
tests: the read side shows the lag the worker last recorded instead)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.projection_state import DEAD_LETTERS, STATE, ProjectionStatus
from workers.log_reader import backlog, lag_ms, log_head
from workers.projectors import PROJECTORS

Document = dict[str, Any]


async def projection_statuses(
    engine: AsyncEngine, db: AsyncDatabase[Document]
) -> list[ProjectionStatus]:
    """Fresh figures from both stores for every projection the code knows."""
    head, _ = await log_head(engine)
    now = datetime.now(UTC)
    statuses = []
    for name in PROJECTORS:
        doc = await db[STATE].find_one({"_id": name})
        lag_events, oldest = await backlog(engine, doc["position"] if doc else 0)
        parked = await db[DEAD_LETTERS].count_documents(
            {"projection": name, "generation": doc["generation"] if doc else 0}
        )
        status = ProjectionStatus.of(
            name,
            doc,
            head_position=head,
            lag_events=lag_events,
            lag_ms=lag_ms(oldest),
            parked=parked,
            now=now,
        )
        statuses.append(status)
    return statuses
