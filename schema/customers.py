"""Customers: the Customer type, sign-up and log-in."""

from __future__ import annotations

from typing import Annotated

import strawberry

from reads.documents import CustomerDocument
from reads.view_documents import customer_document
from schema.context import Info
from schema.dispatch import run_command
from schema.enums import Role
from schema.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    RateLimitedError,
    ValidationError,
)
from schema.node import Node
from schema.scalars import Cents
from writes import rules
from writes.commands import LogIn, SignUp
from writes.errors import ValidationFailed
from writes.views import Committed, CustomerView


@strawberry.type
class Customer(Node):
    email: str
    name: str
    role: Role
    order_count: int
    lifetime_value_cents: Cents

    @classmethod
    def from_document(cls, doc: CustomerDocument) -> Customer:
        """A customer from its read-model document: projected, from the write-store
        fallback, or a mutation's committed view (reads/view_documents.py)."""
        return cls(
            id=strawberry.ID(doc["_id"]),
            email=doc["email"],
            name=doc["name"],
            role=Role(doc["role"]),
            order_count=doc["order_count"],
            lifetime_value_cents=Cents(doc["lifetime_value_cents"]),
        )


@strawberry.type
class AuthSuccess:
    token: str
    customer: Customer
    consistency_token: str


SignUpResult = Annotated[
    AuthSuccess | ValidationError | EmailTakenError | RateLimitedError,
    strawberry.union("SignUpResult"),
]
LogInResult = Annotated[
    AuthSuccess | InvalidCredentialsError | ValidationError | RateLimitedError,
    strawberry.union("LogInResult"),
]


@strawberry.input
class SignUpInput:
    email: str
    name: str
    password: str


@strawberry.input
class LogInInput:
    email: str
    password: str


def _auth_success(info: Info, committed: Committed[CustomerView]) -> AuthSuccess:
    view = committed.value
    return AuthSuccess(
        token=info.context.tokens.issue(view.id, view.role),
        customer=Customer.from_document(customer_document(view)),
        consistency_token=info.context.consistency.issue(committed.position),
    )


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(description="Create a customer account and sign in.")
    async def sign_up(self, info: Info, input: SignUpInput) -> SignUpResult:
        refused = await info.context.throttles.sign_up(info.context.client_address())
        if refused is not None:
            return refused
        command = SignUp(email=input.email, name=input.name, password=input.password)
        return await run_command(  # type: ignore[return-value]
            info, command, lambda c: _auth_success(info, c), authenticated=False
        )

    @strawberry.mutation(description="Exchange email and password for a bearer token.")
    async def log_in(self, info: Info, input: LogInInput) -> LogInResult:
        refused = await info.context.throttles.log_in(
            _account(input.email), info.context.client_address()
        )
        if refused is not None:
            return refused
        command = LogIn(email=input.email, password=input.password)
        return await run_command(  # type: ignore[return-value]
            info, command, lambda c: _auth_success(info, c), authenticated=False
        )


def _account(email: str) -> str:
    """The account a log-in names, as the per-account throttle counts it: the stored form
    of its email, so case and Unicode spellings of one address share one count."""
    try:
        return rules.login_email(email)
    except ValidationFailed:  # control characters: refused further on, counted as given
        return email
