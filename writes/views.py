"""What a handler returns: the state its transaction committed, for mutation payloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

T = TypeVar("T")


@dataclass(frozen=True)
class CustomerView:
    id: UUID
    email: str
    name: str
    role: str
    order_count: int
    lifetime_value_cents: int


@dataclass(frozen=True)
class ProductView:
    id: UUID
    sku: str
    name: str
    description: str
    price_cents: int
    stock: int
    units_sold: int
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class OrderCustomerView:
    id: UUID
    name: str
    email: str


@dataclass(frozen=True)
class OrderLineView:
    product_id: UUID
    sku: str
    name: str
    unit_price_cents: int
    quantity: int

    @property
    def line_total_cents(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclass(frozen=True)
class OrderView:
    id: UUID
    status: str
    customer: OrderCustomerView
    lines: tuple[OrderLineView, ...]
    item_count: int
    total_cents: int
    placed_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True)
class Committed(Generic[T]):
    """A handler's result and the event-log position its reader must wait for."""

    value: T
    position: int
