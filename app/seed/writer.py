"""Writes a planned demo shop through the command bus, skipping what an earlier run wrote.

Every change is a real command run by its real handler, so the events are the ones the
API's mutations append and the worker projects them like any others. The commands carry
the planned moment as `occurred_at` (docs/decisions/0036-demo-seed.md).

A run first reads what is already there: accounts by email, products by sku, orders by
the idempotency key each was placed with. It then writes only what is missing, in the
order the history happened, so a second run (or a run after an interrupted one) adds
nothing twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.seed.plan import ADMIN_EMAIL, ADMIN_NAME, DEMO_PASSWORD, DemoOrder, Fate, Plan
from writes import commands as c
from writes.bus import MessageBus
from writes.models import Customer, IdempotencyKey, Order, Product
from writes.unit_of_work import CommandMetadata
from writes.views import Committed

# Sign-ups hash a password each (argon2, in a thread): a few at once use both cores.
CONCURRENT_SIGN_UPS = 4


class SeedConflict(RuntimeError):
    """The database holds something under a demo name that the demo cannot use."""


@dataclass
class SeedReport:
    products_created: int = 0
    products_restocked: int = 0
    customers_signed_up: int = 0
    orders_placed: int = 0
    orders_shipped: int = 0
    orders_cancelled: int = 0

    @property
    def wrote_anything(self) -> bool:
        return any(vars(self).values())


@dataclass(frozen=True)
class _Existing:
    accounts: dict[str, tuple[uuid.UUID, c.Role]]  # by email
    products: dict[str, tuple[uuid.UUID, int]]  # sku -> (id, stock)
    orders: dict[str, tuple[uuid.UUID, str]]  # idempotency key -> (id, status)


# One step of the history: when it happened and what to do then.
_Step = tuple[datetime, int, Callable[[], Awaitable[None]]]


class DemoShopWriter:
    """Writes one plan; `run()` returns what it added."""

    def __init__(
        self, bus: MessageBus, sessions: async_sessionmaker[AsyncSession], plan: Plan
    ) -> None:
        self._bus = bus
        self._sessions = sessions
        self._plan = plan
        # One correlation id for the whole run: the log shows which events the seed wrote.
        self._correlation_id = f"shop-seed-{uuid.uuid4()}"
        self.report = SeedReport()

    async def run(self) -> SeedReport:
        """Write whatever of the plan is missing, oldest moment first."""
        existing = await self._read_existing()
        admin = await self._admin(existing)
        customers = await self._sign_up(existing)
        products = await self._stock_catalog(existing, admin)
        # Order ids by key: known ones now, new ones as their placing step runs.
        order_ids = {key: order_id for key, (order_id, _) in existing.orders.items()}
        steps: list[_Step] = []
        for order in self._plan.orders:
            known = existing.orders.get(order.key)
            buyer = c.Actor(customers[order.customer], c.Role.CUSTOMER)
            if known is None:
                steps.append((order.placed_at, 0, self._placer(order, buyer, products, order_ids)))
            # A known order still PLACED was left by a run that stopped before settling it.
            if order.fate is not Fate.PLACED and (known is None or known[1] == "PLACED"):
                settler = self._settler(order, buyer, admin, order_ids)
                steps.append((_settled(order), 1, settler))
        steps.sort(key=lambda step: (step[0], step[1]))
        for _, _, step in steps:
            await step()
        return self.report

    async def _read_existing(self) -> _Existing:
        plan = self._plan
        emails = [ADMIN_EMAIL, *(customer.email for customer in plan.customers)]
        skus = [item.sku for item in plan.products]
        keys = [order.key for order in plan.orders]
        async with self._sessions() as session:
            accounts = {
                row.email: (row.id, c.Role(row.role))
                for row in await session.execute(
                    select(Customer.id, Customer.email, Customer.role).where(
                        Customer.email.in_(emails)
                    )
                )
            }
            products = {
                row.sku: (row.id, row.stock)
                for row in await session.execute(
                    select(Product.id, Product.sku, Product.stock).where(Product.sku.in_(skus))
                )
            }
            demo_customers = [account_id for account_id, _ in accounts.values()]
            orders = {
                row.key: (row.id, row.status)
                for row in await session.execute(
                    select(IdempotencyKey.key, Order.id, Order.status)
                    .join(Order, Order.id == IdempotencyKey.order_id)
                    .where(
                        IdempotencyKey.customer_id.in_(demo_customers),
                        IdempotencyKey.key.in_(keys),
                    )
                )
            }
        return _Existing(accounts, products, orders)

    async def _admin(self, existing: _Existing) -> c.Actor:
        known = existing.accounts.get(ADMIN_EMAIL)
        if known is not None:
            if known[1] is not c.Role.ADMIN:
                raise SeedConflict(f"{ADMIN_EMAIL} exists but is not an admin")
            return c.Actor(known[0], c.Role.ADMIN)
        at = self._plan.opened_at - timedelta(days=8)
        made = await self._handle(c.CreateAdmin(ADMIN_EMAIL, ADMIN_NAME, DEMO_PASSWORD), None, at)
        return c.Actor(made.value.id, c.Role.ADMIN)

    async def _sign_up(self, existing: _Existing) -> list[uuid.UUID]:
        """The id of every planned customer, signing up the ones not there yet."""
        limit = asyncio.Semaphore(CONCURRENT_SIGN_UPS)

        async def account(email: str, name: str, joined_at: datetime) -> uuid.UUID:
            known = existing.accounts.get(email)
            if known is not None:
                return known[0]
            async with limit:
                made = await self._handle(c.SignUp(email, name, DEMO_PASSWORD), None, joined_at)
            self.report.customers_signed_up += 1
            customer_id: uuid.UUID = made.value.id
            return customer_id

        return list(
            await asyncio.gather(
                *(account(p.email, p.name, p.joined_at) for p in self._plan.customers)
            )
        )

    async def _stock_catalog(self, existing: _Existing, admin: c.Actor) -> dict[str, str]:
        """Product ids by sku: missing products created, short ones restocked for the orders."""
        plan = self._plan
        to_place = tuple(order for order in plan.orders if order.key not in existing.orders)
        demand = plan.demand(to_place)
        first_sale = min((order.placed_at for order in to_place), default=plan.opened_at)
        ids: dict[str, str] = {}
        for index, item in enumerate(plan.products):
            wanted = demand[item.sku] + plan.leftover[item.sku]
            known = existing.products.get(item.sku)
            if known is None:
                at = plan.opened_at - timedelta(days=7) + timedelta(minutes=index)
                command = c.CreateProduct(
                    item.sku, item.name, item.description, item.price_cents, wanted
                )
                ids[item.sku] = str((await self._handle(command, admin, at)).value.id)
                self.report.products_created += 1
                continue
            product_id, stock = known
            ids[item.sku] = str(product_id)
            if stock < demand[item.sku]:
                at = first_sale - timedelta(hours=1)
                restock = c.RestockProduct(str(product_id), wanted - stock)
                await self._handle(restock, admin, at)
                self.report.products_restocked += 1
        return ids

    def _placer(
        self,
        order: DemoOrder,
        buyer: c.Actor,
        products: dict[str, str],
        order_ids: dict[str, uuid.UUID],
    ) -> Callable[[], Awaitable[None]]:
        async def place() -> None:
            lines = tuple(c.OrderLineRequest(products[sku], qty) for sku, qty in order.lines)
            command = c.PlaceOrder(lines, idempotency_key=order.key)
            placed = await self._handle(command, buyer, order.placed_at)
            order_ids[order.key] = placed.value.id
            self.report.orders_placed += 1

        return place

    def _settler(
        self, order: DemoOrder, buyer: c.Actor, admin: c.Actor, order_ids: dict[str, uuid.UUID]
    ) -> Callable[[], Awaitable[None]]:
        async def settle() -> None:
            at = _settled(order)
            order_id = order_ids[order.key]  # placed by an earlier step or an earlier run
            if order.fate is Fate.CANCELLED:
                await self._handle(c.CancelOrder(str(order_id)), buyer, at)
                self.report.orders_cancelled += 1
            else:
                await self._handle(c.ShipOrder(str(order_id)), admin, at)
                self.report.orders_shipped += 1

        return settle

    async def _handle(
        self, command: c.Command, actor: c.Actor | None, at: datetime
    ) -> Committed[Any]:
        meta = CommandMetadata(actor, self._correlation_id, occurred_at=at)
        return await self._bus.handle(command, meta)


def _settled(order: DemoOrder) -> datetime:
    assert order.settled_at is not None  # only orders with a fate other than PLACED settle
    return order.settled_at
