"""Routes each command to its handler inside a unit of work, then nudges the worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from writes import commands as c
from writes.authorization import authorize
from writes.handlers import customers, orders, products
from writes.nudge import Nudger, SharedNudges
from writes.passwords import Passwords
from writes.unit_of_work import CommandMetadata, UnitOfWork
from writes.views import Committed

Handler = Callable[[Any, UnitOfWork], Awaitable[Committed[Any]]]


def handlers(passwords: Passwords) -> dict[type[c.Command], Handler]:
    """Each command's handler, with the services it names bound in."""
    return {
        c.SignUp: partial(customers.sign_up, passwords=passwords),
        c.CreateAdmin: partial(customers.create_admin, passwords=passwords),
        c.LogIn: partial(customers.log_in, passwords=passwords),
        c.CreateProduct: products.create_product,
        c.ChangeProductPrice: products.change_product_price,
        c.RestockProduct: products.restock_product,
        c.PlaceOrder: orders.place_order,
        c.CancelOrder: orders.cancel_order,
        c.ShipOrder: orders.ship_order,
    }


# Commands that never append events, so there is nothing to project after them.
READ_ONLY = frozenset({c.LogIn})


class MessageBus:
    """The one entry point of the command side."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        nudger: Nudger,
        passwords: Passwords | None = None,
    ) -> None:
        self._sessions = sessions
        # Concurrent commits share their nudges (one Redis exchange serves many).
        self._nudger = SharedNudges(nudger)
        self.passwords = passwords or Passwords()
        self._handlers = handlers(self.passwords)

    async def handle(self, command: c.Command, meta: CommandMetadata) -> Committed[Any]:
        """Run the command in its own transaction; raises a DomainError when refused.

        Authorization is decided here, before any handler runs, for every command alike.
        """
        authorize(command, meta.actor)
        handler = self._handlers[type(command)]
        async with UnitOfWork(self._sessions, meta) as uow:
            result = await handler(command, uow)
        if type(command) not in READ_ONLY:
            await self._nudger.nudge()
        return result
