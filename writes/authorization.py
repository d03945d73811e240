"""Who may do what: every authorization decision of the shop, in one module.

The message bus asks `authorize` before a command's handler runs; the one decision that
needs a row (whose order or account it is) is `may_access`, asked by the handler that loaded
the row and by the read side for the orders and accounts it shows.
"""

from __future__ import annotations

from enum import Enum
from uuid import UUID

from writes import commands as c
from writes.commands import Actor
from writes.errors import Forbidden, Unauthenticated


class Access(Enum):
    """Who may issue a command."""

    ANYONE = "anyone"
    SIGNED_IN = "signed in"
    ADMIN = "admin"


COMMAND_ACCESS: dict[type[c.Command], Access] = {
    c.SignUp: Access.ANYONE,
    c.LogIn: Access.ANYONE,
    # Only the CLI's `shop admin create` issues it: that runs on the servers, with no
    # actor, and the first admin has nobody to be created by.
    c.CreateAdmin: Access.ANYONE,
    c.CreateProduct: Access.ADMIN,
    c.ChangeProductPrice: Access.ADMIN,
    c.RestockProduct: Access.ADMIN,
    c.PlaceOrder: Access.SIGNED_IN,
    # Signed in is the gate; whose order it is is decided once the order is loaded.
    c.CancelOrder: Access.SIGNED_IN,
    c.ShipOrder: Access.ADMIN,
}


def authorize(command: c.Command, actor: Actor | None) -> None:
    """Unauthenticated / Forbidden unless `actor` may issue `command`."""
    access = COMMAND_ACCESS[type(command)]
    if access is Access.ANYONE:
        return
    if actor is None:
        raise Unauthenticated
    if access is Access.ADMIN and not actor.is_admin:
        raise Forbidden("only an admin may do this")


def may_access(actor: Actor | None, owner_id: UUID | str) -> bool:
    """A customer's orders and account are theirs and every admin's, nobody else's.

    `owner_id` is the customer's id, as a UUID or as the read side stores it.
    """
    return actor is not None and (actor.is_admin or str(actor.customer_id) == str(owner_id))
