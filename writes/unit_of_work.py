"""One transaction per command, with the events it produced appended in the same commit."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from writes.clock import iso, now_ms
from writes.commands import Actor
from writes.event_codec import EVENTS
from writes.events import DomainEvent
from writes.models import EventRecord
from writes.sql import APPEND_EVENT, EVENT_LOG_LOCK, LOCK_EVENT_LOG

__all__ = ["EVENT_LOG_LOCK", "CommandMetadata", "UnitOfWork", "head_position"]


@dataclasses.dataclass(frozen=True)
class CommandMetadata:
    """Who asked and why, recorded on every event the command produces."""

    actor: Actor | None
    correlation_id: str
    causation_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    # When the command's facts happened, for importing history (`shop seed`); None is now.
    # Rows and event payloads carry it; the log's recorded_at stays the real append time,
    # and the events' metadata says the time was given (docs/decisions/0036).
    occurred_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.occurred_at is not None and self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware (rows store UTC instants)")


class UnitOfWork:
    """Rolls back unless `commit()` is called; `commit()` appends the recorded events first."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], meta: CommandMetadata) -> None:
        self._sessions = sessions
        self.meta = meta
        self._pending: list[tuple[Any, ...]] = []
        self._committed = False
        self._driver: Any = None

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        await self.session.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                await self.session.rollback()
        finally:
            await self.session.close()

    @property
    def actor(self) -> Actor:
        """Who issues the command, for a handler of a command only the signed in may issue.

        The bus has authorized the command (writes/authorization.py) before its handler
        runs, so a missing actor here is a bug in the access table, not a caller's fault.
        """
        if self.meta.actor is None:
            raise RuntimeError(
                "a handler needs the actor, but writes/authorization.py lets anyone issue "
                "its command: give the command SIGNED_IN or ADMIN access"
            )
        return self.meta.actor

    def now(self) -> datetime:
        """The command's moment, cut to milliseconds: now, or the metadata's `occurred_at`."""
        given = self.meta.occurred_at
        if given is None:
            return now_ms()
        return given.astimezone(UTC).replace(microsecond=given.microsecond // 1000 * 1000)

    def record(self, event: DomainEvent, stream_id: uuid.UUID, stream_version: int) -> None:
        """Queue an event for the commit; `stream_version` is the aggregate's new version."""
        actor = self.meta.actor
        encoded = EVENTS.encode_json(event)
        metadata: dict[str, Any] = {
            "correlation_id": self.meta.correlation_id,
            "causation_id": self.meta.causation_id,
            "actor": (
                None if actor is None else {"id": str(actor.customer_id), "role": actor.role.value}
            ),
            "schema_version": encoded.schema_version,
        }
        if self.meta.occurred_at is not None:
            metadata["occurred_at"] = iso(self.now())
        # APPEND_EVENT's parameters; JSONB goes as text, encoded once (orjson).
        self._pending.append(
            (
                uuid.uuid4(),
                event.stream_type,
                stream_id,
                stream_version,
                encoded.type,
                encoded.data,
                orjson.dumps(metadata).decode(),
            )
        )

    async def driver(self) -> Any:
        """The transaction's own asyncpg connection, for statements sent as plain SQL.

        It is the session's connection inside the session's transaction: what runs on it
        commits or rolls back with everything the session sends (docs/decisions/0077).
        """
        if self._driver is None:
            connection = await self.session.connection()
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            adapter: Any = raw.dbapi_connection
            if not driver.is_in_transaction():
                # SQLAlchemy's asyncpg adapter sends BEGIN lazily, before its own first
                # statement; this is that same call, so the adapter owns the transaction
                # (COMMIT, ROLLBACK) exactly as if it had sent the first statement.
                await adapter._start_transaction()
            if not driver.is_in_transaction():
                raise RuntimeError("the session's connection did not begin a transaction")
            self._driver = driver
        return self._driver

    async def commit(self) -> int:
        """Append the recorded events and commit; returns the position of the last one.

        With nothing recorded it returns the log's head, which is still a valid
        read-your-writes position for the caller.
        """
        return await self.commit_with(None)

    async def commit_with(self, on_position: Callable[[int], Awaitable[None]] | None) -> int:
        """`commit()`, letting the handler store the position in a row of the same commit."""
        if self._pending:
            # Every row change goes out before the lock is taken: the lock serializes
            # all writers, so only the append itself should run while it is held.
            if self.session.new or self.session.dirty or self.session.deleted:
                await self.session.flush()
            driver = await self.driver()
            await driver.execute(LOCK_EVENT_LOG, EVENT_LOG_LOCK)
            position = 0
            for row in self._pending:
                position = max(position, await driver.fetchval(APPEND_EVENT, *row))
        else:
            position = await head_position(self.session)
        if on_position is not None:
            await on_position(position)
        await self.session.commit()
        self._committed = True
        self._pending.clear()
        return position


async def head_position(session: AsyncSession) -> int:
    """The highest committed position in the event log (0 when empty)."""
    head = await session.scalar(select(func.coalesce(func.max(EventRecord.position), 0)))
    return int(head or 0)
