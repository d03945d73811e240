"""writes/authorization.py: who may issue each command, and whose orders and accounts are
whose; the bus asks it before any handler runs."""

from __future__ import annotations

import uuid
from typing import get_args

import pytest

from schema.enums import Role as GraphQLRole
from writes import commands as c
from writes.authorization import COMMAND_ACCESS, Access, authorize, may_access
from writes.commands import Actor, Role
from writes.errors import Forbidden, Unauthenticated

CUSTOMER = Actor(uuid.uuid4(), Role.CUSTOMER)
ADMIN = Actor(uuid.uuid4(), Role.ADMIN)

EXAMPLES: list[c.Command] = [
    c.SignUp("a@example.com", "A", "password-123"),
    c.LogIn("a@example.com", "password-123"),
    c.CreateAdmin("a@example.com", "A", "password-123"),
    c.CreateProduct("SKU", "Tea", "", 100, 1),
    c.ChangeProductPrice(str(uuid.uuid4()), 100),
    c.RestockProduct(str(uuid.uuid4()), 1),
    c.PlaceOrder((c.OrderLineRequest(str(uuid.uuid4()), 1),)),
    c.CancelOrder(str(uuid.uuid4())),
    c.ShipOrder(str(uuid.uuid4())),
]


def test_every_command_has_an_access_rule() -> None:
    assert set(COMMAND_ACCESS) == set(get_args(c.Command))
    assert {type(command) for command in EXAMPLES} == set(COMMAND_ACCESS)


@pytest.mark.parametrize("command", EXAMPLES, ids=lambda command: type(command).__name__)
def test_each_command_is_refused_exactly_to_those_its_access_leaves_out(
    command: c.Command,
) -> None:
    access = COMMAND_ACCESS[type(command)]

    authorize(command, ADMIN)  # an admin may issue every command
    if access is Access.ANYONE:
        authorize(command, None)
        authorize(command, CUSTOMER)
        return
    with pytest.raises(Unauthenticated):
        authorize(command, None)
    if access is Access.SIGNED_IN:
        authorize(command, CUSTOMER)
    else:
        with pytest.raises(Forbidden) as refused:
            authorize(command, CUSTOMER)
        assert str(refused.value) == "only an admin may do this"


@pytest.mark.parametrize(
    ("command", "access"),
    [
        (c.PlaceOrder, Access.SIGNED_IN),
        (c.CancelOrder, Access.SIGNED_IN),
        (c.ShipOrder, Access.ADMIN),
        (c.CreateProduct, Access.ADMIN),
        (c.ChangeProductPrice, Access.ADMIN),
        (c.RestockProduct, Access.ADMIN),
        (c.SignUp, Access.ANYONE),
        (c.LogIn, Access.ANYONE),
    ],
)
def test_the_access_table_says_what_the_design_says(
    command: type[c.Command], access: Access
) -> None:
    assert COMMAND_ACCESS[command] is access


def test_an_order_or_account_is_its_customer_s_and_every_admin_s() -> None:
    owner = CUSTOMER.customer_id
    assert may_access(CUSTOMER, owner)
    assert may_access(CUSTOMER, str(owner))  # as the read side stores it
    assert may_access(ADMIN, owner)
    assert not may_access(Actor(uuid.uuid4(), Role.CUSTOMER), owner)
    assert not may_access(None, owner)


def test_graphql_role_is_the_domain_role() -> None:
    assert GraphQLRole is Role
    assert [(member.name, member.value) for member in Role] == [
        ("CUSTOMER", "CUSTOMER"),
        ("ADMIN", "ADMIN"),
    ]
