"""The unit of work's driver connection (decision 0077): what a handler sends on it commits
and rolls back with the session, and a pooled connection the server closed is replaced at
checkout although no pre-ping runs.

The rows and events written here are not the shop's (a customer without its event, events
of no product), so they go to a database of this module's own, not the run's shared one
that the worker tests project and verify.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bootstrap import build_engine
from app.settings import Settings
from tests.conftest import own_stores
from tests.support import unique
from writes.clock import now_ms
from writes.db import session_factory
from writes.events import ProductRestocked
from writes.models import Customer, EventRecord
from writes.unit_of_work import CommandMetadata, UnitOfWork

_INSERT_CUSTOMER = (
    "INSERT INTO customers (id, email, name, role, password_hash, created_at) "
    "VALUES ($1, $2, 'Dee Driver', 'CUSTOMER', 'x', $3)"
)


class Refused(Exception):
    pass


@pytest.fixture(scope="module")
def own_settings(services: Settings) -> Iterator[Settings]:
    with own_stores(services, f"shop_test_{uuid.uuid4().hex[:10]}") as settings:
        yield settings


@pytest_asyncio.fixture
async def engine(own_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(own_settings, pool_size=2, max_overflow=0)
    yield engine
    await engine.dispose()


async def _customers(engine: AsyncEngine, *ids: uuid.UUID) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count()).select_from(Customer).where(Customer.id.in_(ids))
        )
    return int(found or 0)


def _orm_customer() -> Customer:
    return Customer(
        id=uuid.uuid4(), email=f"{unique('orm')}@example.com", name="Orm Row",
        role="CUSTOMER", password_hash="x", created_at=now_ms(),
    )  # fmt: skip


async def test_driver_statements_roll_back_with_the_session(engine: AsyncEngine) -> None:
    driven, mapped = uuid.uuid4(), _orm_customer()

    async def refused_command() -> None:
        async with UnitOfWork(session_factory(engine), CommandMetadata(None, "test")) as uow:
            uow.session.add(mapped)
            await uow.session.flush()
            driver = await uow.driver()
            await driver.execute(_INSERT_CUSTOMER, driven, f"{unique('raw')}@example.com", now_ms())
            uow.record(ProductRestocked("p", 1, "t"), stream_id=uuid.uuid4(), stream_version=1)
            raise Refused

    with pytest.raises(Refused):
        await refused_command()
    assert await _customers(engine, driven, mapped.id) == 0


async def test_driver_statements_commit_with_the_session_and_its_events(
    engine: AsyncEngine,
) -> None:
    driven, mapped, stream = uuid.uuid4(), _orm_customer(), uuid.uuid4()
    async with UnitOfWork(session_factory(engine), CommandMetadata(None, "test")) as uow:
        driver = await uow.driver()  # before the session sent anything: it begins
        await driver.execute(_INSERT_CUSTOMER, driven, f"{unique('raw')}@example.com", now_ms())
        uow.session.add(mapped)  # flushed by the commit, before the append
        uow.record(ProductRestocked("p", 1, "t"), stream_id=stream, stream_version=1)
        uow.record(ProductRestocked("p", 2, "t"), stream_id=stream, stream_version=2)
        position = await uow.commit()
    assert await _customers(engine, driven, mapped.id) == 2
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(EventRecord.position, EventRecord.data, EventRecord.metadata_)
                .where(EventRecord.stream_id == stream)
                .order_by(EventRecord.stream_version)
            )
        ).all()
    # Consecutive positions, the last one returned; the data as the codec wrote it.
    assert [row.position for row in rows] == [position - 1, position]
    assert [row.data["quantity"] for row in rows] == [1, 2]
    assert rows[0][2]["schema_version"] == ProductRestocked.schema_version


async def test_a_connection_the_server_closed_is_replaced_at_checkout(
    own_settings: Settings,
) -> None:
    """No pre-ping runs: the checkout sees that asyncpg's socket was closed by the server."""
    settings = own_settings
    assert settings.database_url is not None
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    closed = asyncio.Event()
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            first_pid = driver.get_server_pid()
            driver.add_termination_listener(lambda _connection: closed.set())
        admin = await asyncpg.connect(
            make_url(settings.database_url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first_pid)
        finally:
            await admin.close()
        await asyncio.wait_for(closed.wait(), timeout=10)

        # The one pooled connection is dead; the checkout replaces it and the command works.
        async with engine.connect() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert pid != first_pid
    finally:
        await engine.dispose()
