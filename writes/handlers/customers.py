"""Sign-up, admin creation and log-in."""

from __future__ import annotations

import uuid

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from writes import rules
from writes.clock import iso
from writes.commands import CreateAdmin, LogIn, Role, SignUp
from writes.errors import EmailTaken, InvalidCredentials, ValidationFailed
from writes.events import CustomerRegistered
from writes.models import Customer, Order
from writes.passwords import hash_password, verify_password
from writes.unit_of_work import UnitOfWork
from writes.views import Committed, CustomerView


async def sign_up(cmd: SignUp, uow: UnitOfWork) -> Committed[CustomerView]:
    """Register a customer account."""
    return await _register(cmd.email, cmd.name, cmd.password, Role.CUSTOMER, uow)


async def create_admin(cmd: CreateAdmin, uow: UnitOfWork) -> Committed[CustomerView]:
    """Register an admin account (the CLI's `shop admin create`)."""
    return await _register(cmd.email, cmd.name, cmd.password, Role.ADMIN, uow)


async def log_in(cmd: LogIn, uow: UnitOfWork) -> Committed[CustomerView]:
    """Check the credentials; the position is the log's head at that moment."""
    customer = await uow.session.scalar(
        select(Customer).where(Customer.email == _login_email(cmd.email))
    )
    ok = await verify_password(customer.password_hash if customer else None, cmd.password)
    if customer is None or not ok:
        raise InvalidCredentials
    view = await customer_view(uow, customer)
    return Committed(view, await uow.commit())


def _login_email(raw: str) -> str:
    """The stored form of an email: sign-up's normalization (NFC, lower case) when it applies."""
    try:
        return rules.email(raw.strip())
    except ValidationFailed:
        return raw.strip().lower()


async def _register(
    email: str, name: str, password: str, role: Role, uow: UnitOfWork
) -> Committed[CustomerView]:
    customer = Customer(
        id=uuid.uuid4(),
        email=rules.email(email),
        name=rules.name(name),
        role=role.value,
        password_hash=await hash_password(rules.password(password)),
        created_at=uow.now(),
    )
    taken = await uow.session.scalar(select(Customer.id).where(Customer.email == customer.email))
    if taken is not None:
        raise EmailTaken
    uow.session.add(customer)
    try:
        await uow.session.flush()
    except IntegrityError:
        # Another sign-up with the same email committed between our check and insert.
        raise EmailTaken from None
    uow.record(
        CustomerRegistered(
            customer_id=str(customer.id),
            email=customer.email,
            name=customer.name,
            role=customer.role,
            registered_at=iso(customer.created_at),
        ),
        stream_id=customer.id,
        stream_version=1,
    )
    view = CustomerView(customer.id, customer.email, customer.name, customer.role, 0, 0)
    return Committed(view, await uow.commit())


async def customer_view(uow: UnitOfWork, customer: Customer) -> CustomerView:
    """The customer with order statistics; cancelled orders count for nothing."""
    live = Order.status != "CANCELLED"
    count, value = (
        await uow.session.execute(
            select(
                func.count(case((live, 1))),
                func.coalesce(func.sum(case((live, Order.total_cents), else_=0)), 0),
            ).where(Order.customer_id == customer.id)
        )
    ).one()
    return CustomerView(
        customer.id, customer.email, customer.name, customer.role, int(count), int(value)
    )
