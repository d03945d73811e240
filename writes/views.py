"""What a handler returns: the state its transaction committed, for mutation payloads.

A view is the write side's own picture of an entity, built from its rows by the one
builder below each type; the handlers and the write-store fallback (reads/fallback.py)
both build them so. reads/view_documents.py turns a view into its read-model document.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from writes import models

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


def product_view(product: models.Product) -> ProductView:
    """The committed state of a product row."""
    return ProductView(
        id=product.id,
        sku=product.sku,
        name=product.name,
        description=product.description,
        price_cents=product.price_cents,
        stock=product.stock,
        units_sold=product.units_sold,
        version=product.version,
        updated_at=product.updated_at,
    )


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


def order_line_view(line: models.OrderLine) -> OrderLineView:
    """An order line row as its order's view holds it."""
    return OrderLineView(line.product_id, line.sku, line.name, line.unit_price_cents, line.quantity)


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


def order_view(
    order: models.Order, customer: OrderCustomerView, lines: Iterable[OrderLineView]
) -> OrderView:
    """The committed state of an order row, with its customer and lines (in line order)."""
    return OrderView(
        id=order.id,
        status=order.status,
        customer=customer,
        lines=tuple(lines),
        item_count=order.item_count,
        total_cents=order.total_cents,
        placed_at=order.placed_at,
        updated_at=order.updated_at,
        version=order.version,
    )


@dataclass(frozen=True)
class Committed(Generic[T]):
    """A handler's result and the event-log position its reader must wait for."""

    value: T
    position: int
