"""Load for the fault tests: real commands through writes.bus.MessageBus on an engine of
their own (wide enough for many concurrent writers), with a session whose commit can be
held open or abandoned after the unit of work appended its events.

`commit_plan` is a ContextVar: each writer task sets how *its* next command ends, and
`DelayableSession.commit` (what UnitOfWork.commit_with calls right after the append)
reads it. Everything else is the production command path.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

from arq.connections import ArqRedis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.bootstrap import build_bus, build_engine
from app.settings import Settings
from tests.support import unique
from writes.bus import MessageBus
from writes.commands import (
    Actor,
    CancelOrder,
    CreateProduct,
    OrderLineRequest,
    PlaceOrder,
    RestockProduct,
    Role,
    ShipOrder,
    SignUp,
)
from writes.nudge import ArqNudger, arq_redis
from writes.unit_of_work import CommandMetadata
from writes.views import Committed


@dataclass(frozen=True)
class AppendedEvent:
    position: int
    type: str
    data: dict[str, Any]


@dataclass
class CommitPlan:
    """How the next commit of this task ends: held open `hold_s` first, then commit or not."""

    hold_s: float = 0.0
    roll_back: bool = False
    appended: list[AppendedEvent] = field(default_factory=list)


class Abandoned(Exception):
    """Raised in place of the commit: the unit of work rolls the appended events back."""

    def __init__(self, appended: list[AppendedEvent]) -> None:
        super().__init__(f"abandoned after appending {[e.position for e in appended]}")
        self.appended = appended


commit_plan: ContextVar[CommitPlan | None] = ContextVar("commit_plan", default=None)

_OWN_EVENTS = text(
    "SELECT position, type, data FROM event_log "
    "WHERE transaction_id = pg_current_xact_id() ORDER BY position"
)


class DelayableSession(AsyncSession):
    """An AsyncSession whose commit follows the task's CommitPlan, if it has one.

    UnitOfWork.commit_with appends (advisory lock + insert) and then calls commit: a
    plan holds the transaction open right there, events appended but not committed,
    or raises so the unit of work rolls them back.
    """

    async def commit(self) -> None:
        plan = commit_plan.get()
        if plan is not None and self.in_transaction():
            rows = (await self.execute(_OWN_EVENTS)).all()
            plan.appended = [AppendedEvent(r.position, r.type, r.data) for r in rows]
            if plan.hold_s > 0:
                await self.execute(text("SELECT pg_sleep(:s)"), {"s": plan.hold_s})
            if plan.roll_back:
                raise Abandoned(plan.appended)
        await super().commit()


@dataclass
class Shop:
    """Commands as the API sends them, nudging the pipeline's worker over arq."""

    bus: MessageBus
    engine: AsyncEngine
    redis: ArqRedis
    admin: Actor = field(default_factory=lambda: Actor(uuid.uuid4(), Role.ADMIN))

    async def handle(self, command: Any, actor: Actor | None) -> Committed[Any]:
        return await self.bus.handle(command, CommandMetadata(actor, unique("faults")))

    async def customer(self) -> Actor:
        email = f"{unique('fault')}@example.com"
        committed = await self.handle(SignUp(email, "Fay Fault", "correct-horse-battery"), None)
        return Actor(committed.value.id, Role.CUSTOMER)

    async def product(self, stock: int, price_cents: int) -> str:
        command = CreateProduct(unique("SKU"), "Fault mug", "", price_cents, stock)
        return str((await self.handle(command, self.admin)).value.id)

    async def place(self, actor: Actor, lines: dict[str, int]) -> Committed[Any]:
        request = tuple(OrderLineRequest(pid, qty) for pid, qty in lines.items())
        return await self.handle(PlaceOrder(request), actor)

    async def cancel(self, actor: Actor, order_id: str) -> Committed[Any]:
        return await self.handle(CancelOrder(order_id), actor)

    async def ship(self, order_id: str) -> Committed[Any]:
        return await self.handle(ShipOrder(order_id), self.admin)

    async def restock(self, product_id: str, quantity: int) -> Committed[Any]:
        return await self.handle(RestockProduct(product_id, quantity), self.admin)


def random_lines(rng: random.Random, products: list[str], most: int = 3) -> dict[str, int]:
    chosen = rng.sample(products, rng.randint(1, min(most, len(products))))
    return {product_id: rng.randint(1, 3) for product_id in chosen}


@asynccontextmanager
async def shop_for(settings: Settings, redis_prefix: str, connections: int) -> AsyncIterator[Shop]:
    """A Shop with `connections` PostgreSQL connections, nudging the queue of `redis_prefix`."""
    assert settings.redis_url is not None
    engine = build_engine(settings, pool_size=connections, max_overflow=2)
    sessions = async_sessionmaker(
        engine, class_=DelayableSession, expire_on_commit=False, autoflush=False
    )
    redis = arq_redis(settings.redis_url, timeout_s=1.0)
    bus = build_bus(
        settings,
        engine,
        ArqNudger(redis, redis_prefix),
        sessions=cast("async_sessionmaker[AsyncSession]", sessions),
    )
    try:
        yield Shop(bus, engine, redis)
    finally:
        await redis.aclose(close_connection_pool=True)
        await engine.dispose()
