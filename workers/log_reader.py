"""Reads the event log in position order.

Appends are serialized (docs/decisions/0003-serialized-event-appends.md), so a
position becomes visible only after every lower one committed or rolled back:
reading `position > checkpoint` in order never skips an event. Each row is decoded into
its event here, once for every projection that shares the read.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.projection import StoredEvent, UndecodableEvent, UnknownEvent
from writes.event_codec import EVENTS, EventCodec, EventDecodeError, UnknownEventType
from writes.events import DomainEvent
from writes.models import EventRecord


async def read_events(engine: AsyncEngine, after: int, limit: int) -> list[StoredEvent]:
    """Up to `limit` events with positions above `after`, oldest first."""
    return await _read(engine, _AFTER, {"after": after, "limit": limit})


class SharedLogReader:
    """One worker's projections, woken together at the same position, share one read.

    A projection joining a read already under way may miss an event committed just
    after it was sent; it reads again after that batch, as it always does.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reading: dict[tuple[int, int], asyncio.Task[list[StoredEvent]]] = {}

    async def read_events(self, after: int, limit: int) -> list[StoredEvent]:
        key = (after, limit)
        read = self._reading.get(key)
        if read is None:
            read = asyncio.ensure_future(read_events(self._engine, after, limit))
            self._reading[key] = read
            read.add_done_callback(lambda _: self._reading.pop(key, None))
        # Shielded: one projection's cancellation must not cancel the others' read.
        return await asyncio.shield(read)


async def read_positions(engine: AsyncEngine, positions: list[int]) -> list[StoredEvent]:
    """The events at the given positions (parked ones being retried), oldest first."""
    if not positions:
        return []
    return await _read(
        engine,
        _EVENT.where(EventRecord.position.in_(positions)).order_by(EventRecord.position),
        {},
    )


# Columns, not select(EventRecord): on a Core connection .scalars() of an entity
# select would yield only its first column.
_EVENT = select(
    EventRecord.position,
    EventRecord.stream_type,
    EventRecord.stream_id,
    EventRecord.stream_version,
    EventRecord.type,
    EventRecord.metadata_["schema_version"].as_integer().label("schema_version"),
    EventRecord.data,
    EventRecord.recorded_at,
)
# Built once: every batch of every projection runs it.
_AFTER = (
    _EVENT.where(EventRecord.position > bindparam("after"))
    .order_by(EventRecord.position)
    .limit(bindparam("limit"))
)


async def _read(
    engine: AsyncEngine, query: Select[Any], parameters: dict[str, Any]
) -> list[StoredEvent]:
    async with engine.connect() as conn:
        rows = (await conn.execute(query, parameters)).all()
    return [
        StoredEvent(
            position=row.position,
            stream_type=row.stream_type,
            stream_id=str(row.stream_id),
            stream_version=row.stream_version,
            event=decode_row(row.type, row.schema_version, row.data),
            recorded_at=row.recorded_at,
        )
        for row in rows
    ]


def decode_row(
    type_name: str, schema_version: int | None, data: Any, codec: EventCodec = EVENTS
) -> DomainEvent | UnknownEvent | UndecodableEvent:
    """A row's event, or what stands for it when the row does not decode.

    A row cannot stop the reader: an unknown type is skipped by every projector (its
    checkpoint moves on), an undecodable row fails in each projection's failure policy,
    which retries and then parks it with its stream as it would a failing fold.
    """
    try:
        return codec.decode(type_name, schema_version, data)
    except UnknownEventType:
        return UnknownEvent(type_name)
    except EventDecodeError as exc:
        return UndecodableEvent(type_name, exc)


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
