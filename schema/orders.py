"""Orders: the Order type and placing, cancelling and shipping."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from reads.documents import OrderCustomerDocument, OrderDocument, OrderLineDocument
from reads.view_documents import order_document
from schema.context import Info
from schema.dispatch import run_command
from schema.enums import OrderStatus
from schema.errors import (
    InsufficientStockError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from schema.global_ids import order_line_id
from schema.node import Node
from schema.scalars import Cents
from writes.commands import CancelOrder, OrderLineRequest, PlaceOrder, ShipOrder
from writes.views import Committed, OrderView


@strawberry.type
class OrderCustomer:
    id: strawberry.ID
    name: str
    email: str

    @classmethod
    def from_document(cls, doc: OrderCustomerDocument) -> OrderCustomer:
        return cls(id=strawberry.ID(doc["id"]), name=doc["name"], email=doc["email"])


@strawberry.type
class OrderLine:
    id: strawberry.ID = strawberry.field(
        description="Unique across all types; the same for this line on every read."
    )
    product_id: strawberry.ID
    sku: str
    name: str
    unit_price_cents: Cents
    quantity: int
    line_total_cents: Cents

    @classmethod
    def from_document(cls, order_id: str, line_no: int, doc: OrderLineDocument) -> OrderLine:
        """The `line_no`th line (from 1) of order `order_id`."""
        return cls(
            id=order_line_id(order_id, line_no),
            product_id=strawberry.ID(doc["product_id"]),
            sku=doc["sku"],
            name=doc["name"],
            unit_price_cents=Cents(doc["unit_price_cents"]),
            quantity=doc["quantity"],
            line_total_cents=Cents(doc["line_total_cents"]),
        )


@strawberry.type
class Order(Node):
    status: OrderStatus
    customer: OrderCustomer
    lines: list[OrderLine]
    item_count: int
    total_cents: Cents
    placed_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_document(cls, doc: OrderDocument) -> Order:
        """An order from its read-model document: projected, from the write-store fallback,
        or a mutation's committed view (reads/view_documents.py)."""
        return cls(
            id=strawberry.ID(doc["_id"]),
            status=OrderStatus(doc["status"]),
            customer=OrderCustomer.from_document(doc["customer"]),
            lines=[
                OrderLine.from_document(doc["_id"], line_no, line)
                for line_no, line in enumerate(doc["lines"], start=1)
            ],
            item_count=doc["item_count"],
            total_cents=Cents(doc["total_cents"]),
            placed_at=doc["placed_at"],
            updated_at=doc["updated_at"],
            version=doc["version"],
        )


@strawberry.type
class OrderSuccess:
    order: Order
    consistency_token: str


PlaceOrderResult = Annotated[
    OrderSuccess | ValidationError | NotFoundError | InsufficientStockError,
    strawberry.union("PlaceOrderResult"),
]
OrderResult = Annotated[
    OrderSuccess | NotFoundError | InvalidTransitionError, strawberry.union("OrderResult")
]


@strawberry.input
class OrderLineInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.input
class PlaceOrderInput:
    lines: list[OrderLineInput]
    idempotency_key: str | None = None


@strawberry.input
class OrderIdInput:
    order_id: strawberry.ID


def _success(info: Info, committed: Committed[OrderView]) -> OrderSuccess:
    return OrderSuccess(
        order=Order.from_document(order_document(committed.value)),
        consistency_token=info.context.consistency.issue(committed.position),
    )


@strawberry.type
class OrderMutations:
    @strawberry.mutation(
        description="Place an order; an idempotencyKey makes retries return the first result."
    )
    async def place_order(self, info: Info, input: PlaceOrderInput) -> PlaceOrderResult:
        command = PlaceOrder(
            lines=tuple(OrderLineRequest(line.product_id, line.quantity) for line in input.lines),
            idempotency_key=input.idempotency_key,
        )
        return await run_command(info, command, lambda c: _success(info, c))  # type: ignore[return-value]

    @strawberry.mutation(description="Cancel a placed order (its customer or an admin).")
    async def cancel_order(self, info: Info, input: OrderIdInput) -> OrderResult:
        return await run_command(  # type: ignore[return-value]
            info, CancelOrder(order_id=input.order_id), lambda c: _success(info, c)
        )

    @strawberry.mutation(description="Mark a placed order shipped (admin).")
    async def ship_order(self, info: Info, input: OrderIdInput) -> OrderResult:
        return await run_command(  # type: ignore[return-value]
            info, ShipOrder(order_id=input.order_id), lambda c: _success(info, c)
        )
