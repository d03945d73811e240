"""Data for the benchmarks, written through the command bus (the API's own write path).

Every command goes through the real handlers and appends real events, so the worker
projects them exactly as it projects the API's writes. Tokens are issued with the
deployment's JWT settings, as logIn would issue them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app.bootstrap import build_bus, build_engine, build_redis, nudger
from app.settings import Settings
from schema.auth import TokenService
from writes import commands as c
from writes.unit_of_work import CommandMetadata
from writes.views import Committed

PASSWORD = "bench-password"  # noqa: S105 (accounts of the bench's own throwaway database)


@dataclass(frozen=True)
class Account:
    actor: c.Actor
    token: str

    @property
    def id(self) -> str:
        return str(self.actor.customer_id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Seeder:
    def __init__(self, settings: Settings, pool_size: int = 8) -> None:
        self.engine = build_engine(settings, pool_size=pool_size, max_overflow=0)
        self._redis = build_redis(settings)
        self.bus = build_bus(settings, self.engine, nudger(settings, self._redis))
        self._tokens = TokenService(
            settings.jwt_secret, settings.jwt_algorithm, settings.jwt_ttl_seconds,
            settings.jwt_issuer,
        )  # fmt: skip
        self._admin: Account | None = None

    async def close(self) -> None:
        await self._redis.aclose(close_connection_pool=True)
        await self.engine.dispose()

    async def handle(self, command: Any, actor: c.Actor | None = None) -> Committed[Any]:
        return await self.bus.handle(command, CommandMetadata(actor, f"bench-{uuid.uuid4().hex}"))

    def _account(self, customer_id: uuid.UUID, role: c.Role) -> Account:
        return Account(c.Actor(customer_id, role), self._tokens.issue(customer_id, role.value))

    async def admin(self) -> Account:
        if self._admin is None:
            email = f"admin-{uuid.uuid4().hex[:12]}@bench.example.com"
            made = await self.handle(c.CreateAdmin(email, "Bench Admin", PASSWORD))
            self._admin = self._account(made.value.id, c.Role.ADMIN)
        return self._admin

    async def customer(self) -> Account:
        email = f"buyer-{uuid.uuid4().hex[:12]}@bench.example.com"
        made = await self.handle(c.SignUp(email, "Bench Buyer", PASSWORD))
        return self._account(made.value.id, c.Role.CUSTOMER)

    async def products(self, count: int, stock: int = 10**9) -> list[str]:
        admin = await self.admin()
        made = []
        for n in range(count):
            sku = f"BENCH-{uuid.uuid4().hex[:10]}"
            command = c.CreateProduct(sku, f"Bench item {n}", "A benchmark item", 100 + n, stock)
            made.append(str((await self.handle(command, admin.actor)).value.id))
        return made

    async def place_lines(
        self, buyer: Account, lines: tuple[tuple[str, int], ...]
    ) -> Committed[Any]:
        """An order of exactly these (product id, quantity) lines."""
        chosen = tuple(c.OrderLineRequest(product, quantity) for product, quantity in lines)
        return await self.handle(c.PlaceOrder(chosen), buyer.actor)

    async def place(
        self, buyer: Account, products: list[str], lines: int, offset: int = 0
    ) -> Committed[Any]:
        """An order of `lines` lines over consecutive products, starting at `offset`."""
        chosen = tuple(
            c.OrderLineRequest(products[(offset + k) % len(products)], 1 + k % 3)
            for k in range(lines)
        )
        return await self.handle(c.PlaceOrder(chosen), buyer.actor)
