"""Named domain failures. `schema/errors.py` translates them to GraphQL in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CommandField = Literal[
    "email",
    "name",
    "password",
    "sku",
    "description",
    "price_cents",
    "stock",
    "quantity",
    "lines",
    "product_id",
    "idempotency_key",
]
"""A field of a command (writes/commands.py), named as the command names it."""


class DomainError(Exception):
    """A command was refused; nothing was written."""

    code = "DOMAIN_ERROR"


@dataclass
class ValidationFailed(DomainError):
    """A field of the command breaks a rule; `line` is the index of the order line (in
    `PlaceOrder.lines`) whose field it is, None for a field of the command itself."""

    field: CommandField
    message: str
    line: int | None = None
    code = "VALIDATION_ERROR"

    def __str__(self) -> str:
        where = self.field if self.line is None else f"{self.field} of line {self.line}"
        return f"{where}: {self.message}"


@dataclass
class NotFound(DomainError):
    kind: str
    id: str
    code = "NOT_FOUND"

    def __str__(self) -> str:
        return f"no {self.kind} with id {self.id!r}"


@dataclass
class InsufficientStock(DomainError):
    product_id: str
    requested: int
    available: int
    code = "INSUFFICIENT_STOCK"

    def __str__(self) -> str:
        return (
            f"product {self.product_id} has {self.available} in stock, {self.requested} requested"
        )


@dataclass
class VersionConflict(DomainError):
    expected_version: int
    actual_version: int
    code = "VERSION_CONFLICT"

    def __str__(self) -> str:
        return (
            f"expected version {self.expected_version} but the product is at version "
            f"{self.actual_version}: reload it and try again"
        )


@dataclass
class InvalidTransition(DomainError):
    from_status: str
    to_status: str
    code = "INVALID_TRANSITION"

    def __str__(self) -> str:
        return f"an order cannot go from {self.from_status} to {self.to_status}"


class EmailTaken(DomainError):
    code = "EMAIL_TAKEN"

    def __str__(self) -> str:
        return "an account with this email already exists"


class InvalidCredentials(DomainError):
    code = "INVALID_CREDENTIALS"

    def __str__(self) -> str:
        return "email or password is wrong"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"

    def __str__(self) -> str:
        return "sign in first: this operation needs a bearer token"


@dataclass
class Forbidden(DomainError):
    reason: str
    code = "FORBIDDEN"

    def __str__(self) -> str:
        return self.reason
