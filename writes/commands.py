"""Commands: what a caller asks the shop to do. Raw input; handlers validate it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    CUSTOMER = "CUSTOMER"
    ADMIN = "ADMIN"


@dataclass(frozen=True)
class Actor:
    """Who issues a command, as established by authentication."""

    customer_id: UUID
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True)
class SignUp:
    email: str
    name: str
    password: str


@dataclass(frozen=True)
class CreateAdmin:
    email: str
    name: str
    password: str


@dataclass(frozen=True)
class LogIn:
    email: str
    password: str


@dataclass(frozen=True)
class CreateProduct:
    sku: str
    name: str
    description: str
    price_cents: int
    stock: int


@dataclass(frozen=True)
class ChangeProductPrice:
    product_id: str
    price_cents: int
    expected_version: int | None = None


@dataclass(frozen=True)
class RestockProduct:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class OrderLineRequest:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class PlaceOrder:
    lines: tuple[OrderLineRequest, ...]
    idempotency_key: str | None = None


@dataclass(frozen=True)
class CancelOrder:
    order_id: str


@dataclass(frozen=True)
class ShipOrder:
    order_id: str


Command = (
    SignUp
    | CreateAdmin
    | LogIn
    | CreateProduct
    | ChangeProductPrice
    | RestockProduct
    | PlaceOrder
    | CancelOrder
    | ShipOrder
)
