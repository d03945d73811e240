"""Domain events: what happened, with everything a projector needs in the payload.

Projectors never read the write tables, so each event carries full data (names,
prices, the customer) as of the moment it happened. Field names are the JSON keys
stored in `event_log.data`; a class's `schema_version` goes to the row's metadata, so
its fields can evolve: changing them means a version up and an upcaster in
writes/event_codec.py, which turns rows back into these classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class DomainEvent:
    stream_type: ClassVar[str]
    # The version of the class's fields; rows of older versions are upcast to it.
    schema_version: ClassVar[int] = 1


@dataclass(frozen=True)
class CustomerRegistered(DomainEvent):
    stream_type: ClassVar[str] = "customer"
    customer_id: str
    email: str
    name: str
    role: str
    registered_at: str


@dataclass(frozen=True)
class ProductCreated(DomainEvent):
    stream_type: ClassVar[str] = "product"
    product_id: str
    sku: str
    name: str
    description: str
    price_cents: int
    stock: int
    created_at: str


@dataclass(frozen=True)
class ProductPriceChanged(DomainEvent):
    stream_type: ClassVar[str] = "product"
    product_id: str
    previous_price_cents: int
    price_cents: int
    changed_at: str


@dataclass(frozen=True)
class ProductRestocked(DomainEvent):
    stream_type: ClassVar[str] = "product"
    product_id: str
    quantity: int
    restocked_at: str


@dataclass(frozen=True)
class OrderCustomerData:
    id: str
    name: str
    email: str


@dataclass(frozen=True)
class OrderLineData:
    product_id: str
    sku: str
    name: str
    unit_price_cents: int
    quantity: int
    line_total_cents: int


@dataclass(frozen=True)
class OrderPlaced(DomainEvent):
    stream_type: ClassVar[str] = "order"
    order_id: str
    customer: OrderCustomerData
    lines: tuple[OrderLineData, ...]
    item_count: int
    total_cents: int
    placed_at: str


@dataclass(frozen=True)
class RestockedLine:
    product_id: str
    quantity: int
    line_total_cents: int


@dataclass(frozen=True)
class OrderCancelled(DomainEvent):
    stream_type: ClassVar[str] = "order"
    order_id: str
    customer_id: str
    # What to put back on the shelf and take off revenue; placed_at names the
    # day bucket the sales dashboard has to reverse.
    lines: tuple[RestockedLine, ...]
    total_cents: int
    placed_at: str
    cancelled_at: str


@dataclass(frozen=True)
class OrderShipped(DomainEvent):
    stream_type: ClassVar[str] = "order"
    order_id: str
    customer_id: str
    shipped_at: str
