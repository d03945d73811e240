"""Reads the event log in position order.

Appends are serialized (docs/decisions/0003-serialized-event-appends.md), so a
position becomes visible only after every lower one committed or rolled back:
reading `position > checkpoint` in order never skips an event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.projection import StoredEvent
from writes.models import EventRecord


async def read_events(engine: AsyncEngine, after: int, limit: int) -> list[StoredEvent]:
    """Up to `limit` events with positions above `after`, oldest first."""
    return await _read(
        engine,
        _EVENT.where(EventRecord.position > after).order_by(EventRecord.position).limit(limit),
    )


async def read_positions(engine: AsyncEngine, positions: list[int]) -> list[StoredEvent]:
    """The events at the given positions (parked ones being retried), oldest first."""
    if not positions:
        return []
    return await _read(
        engine, _EVENT.where(EventRecord.position.in_(positions)).order_by(EventRecord.position)
    )


# Columns, not select(EventRecord): on a Core connection .scalars() of an entity
# select would yield only its first column.
_EVENT = select(
    EventRecord.position,
    EventRecord.stream_type,
    EventRecord.stream_id,
    EventRecord.stream_version,
    EventRecord.type,
    EventRecord.data,
    EventRecord.recorded_at,
)


async def _read(engine: AsyncEngine, query: Select[Any]) -> list[StoredEvent]:
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        StoredEvent(
            position=row.position,
            stream_type=row.stream_type,
            stream_id=str(row.stream_id),
            stream_version=row.stream_version,
            type=row.type,
            data=row.data,
            recorded_at=row.recorded_at,
        )
        for row in rows
    ]


async def log_head(engine: AsyncEngine) -> tuple[int, int]:
    """The highest position and the number of events (0, 0 for an empty log)."""
    async with engine.connect() as conn:
        head, count = (
            await conn.execute(
                select(func.coalesce(func.max(EventRecord.position), 0), func.count())
            )
        ).one()
    return int(head), int(count)


async def backlog(engine: AsyncEngine, after: int) -> tuple[int, datetime | None]:
    """How many events lie above `after`, and when the oldest of them was recorded."""
    async with engine.connect() as conn:
        count, oldest = (
            await conn.execute(
                select(func.count(), func.min(EventRecord.recorded_at)).where(
                    EventRecord.position > after
                )
            )
        ).one()
    return int(count), oldest


def lag_ms(oldest: datetime | None) -> int:
    """Milliseconds since the oldest unprojected event was recorded (0 when caught up).

    Taken after the backlog query: an event recorded in between must not make it negative.
    """
    if oldest is None:
        return 0
    return max(0, int((datetime.now(UTC) - oldest).total_seconds() * 1000))
