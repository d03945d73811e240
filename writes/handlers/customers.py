"""Sign-up, admin creation and log-in."""

from __future__ import annotations

import uuid

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from writes import rules
from writes.clock import iso
from writes.commands import CreateAdmin, LogIn, Role, SignUp
from writes.errors import EmailTaken, InvalidCredentials
from writes.events import CustomerRegistered
from writes.models import Customer, Order
from writes.passwords import Passwords
from writes.unit_of_work import UnitOfWork
from writes.views import Committed, CustomerView


async def sign_up(cmd: SignUp, uow: UnitOfWork, passwords: Passwords) -> Committed[CustomerView]:
    """Register a customer account."""
    return await _register(cmd.email, cmd.name, cmd.password, Role.CUSTOMER, uow, passwords)


async def create_admin(
    cmd: CreateAdmin, uow: UnitOfWork, passwords: Passwords
) -> Committed[CustomerView]:
    """Register an admin account (the CLI's `shop admin create`)."""
    return await _register(cmd.email, cmd.name, cmd.password, Role.ADMIN, uow, passwords)


async def log_in(cmd: LogIn, uow: UnitOfWork, passwords: Passwords) -> Committed[CustomerView]:
    """Check the credentials; the position is the log's head at that moment.

    Input with control characters is refused before any hashing. A hash made with older
    argon2 parameters is replaced on a successful log-in, so every account comes to cost
    what an unknown email costs (the dummy hash) and timing tells them apart no longer.
    """
    email = rules.login_email(cmd.email)
    password = rules.plain_text(cmd.password, "password")
    customer = await uow.session.scalar(select(Customer).where(Customer.email == email))
    ok = await passwords.verify(customer.password_hash if customer else None, password)
    if customer is None or not ok:
        raise InvalidCredentials
    if passwords.needs_rehash(customer.password_hash):
        customer.password_hash = await passwords.hash(password)
    view = await customer_view(uow, customer)
    return Committed(view, await uow.commit())


async def _register(
    email: str, name: str, password: str, role: Role, uow: UnitOfWork, passwords: Passwords
) -> Committed[CustomerView]:
    """Every rule is checked, and the email looked up, before the password is hashed."""
    customer = Customer(
        id=uuid.uuid4(),
        email=rules.email(email),
        name=rules.name(name),
        role=role.value,
        created_at=uow.now(),
    )
    valid_password = rules.password(password)
    taken = await uow.session.scalar(select(Customer.id).where(Customer.email == customer.email))
    if taken is not None:
        raise EmailTaken
    customer.password_hash = await passwords.hash(valid_password)
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
