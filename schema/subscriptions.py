"""Live updates over websockets, fed by projection notifications.

Each subscriber gets only what it may read: customers their own orders, admins
everything; products are public. `afterToken` replays what changed since that
position, then the subscription goes live without a gap or a duplicate.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, cast

import strawberry

from reads.documents import OrderDocument, ProductDocument
from reads.hub import ListenerDropped
from schema.context import Info
from schema.errors import ApiError
from schema.orders import Order
from schema.products import Product
from schema.projections import ProjectionStatus
from schema.reading import admin, may_read_order, read_dashboard, signed_in
from schema.sales import DEFAULT_DAYS, DEFAULT_TOP, SalesDashboard


def _after(info: Info, token: str | None) -> int | None:
    return None if token is None else info.context.consistency.position(token)


def _dropped(exc: ListenerDropped) -> ApiError:
    return ApiError("SUBSCRIPTION_DROPPED", f"this subscription was dropped: {exc}")


@strawberry.type
class Subscription:
    @strawberry.subscription(description="One order as it changes (its customer or an admin).")
    async def order_updated(self, info: Info, id: strawberry.ID) -> AsyncGenerator[Order, None]:
        # Another customer's order is silent, as an unknown id is: no existence oracle.
        actor = signed_in(info)
        order_id = id.lower()
        try:
            async for doc in info.context.queries.feed.documents(
                "orders",
                "orders",
                query={"_id": order_id},
                match=lambda doc: doc["_id"] == order_id and may_read_order(actor, doc),
                ids=frozenset({order_id}),
            ):
                yield Order.from_document(cast("OrderDocument", doc))
        except ListenerDropped as exc:
            raise _dropped(exc) from None

    @strawberry.subscription(description="Your orders as they are placed and change.")
    async def my_orders_updated(
        self, info: Info, after_token: str | None = None
    ) -> AsyncGenerator[Order, None]:
        actor = signed_in(info)
        customer_id = str(actor.customer_id)
        try:
            async for doc in info.context.queries.feed.documents(
                "orders",
                "orders",
                query={"customer.id": customer_id},
                match=lambda doc: doc["customer"]["id"] == customer_id,
                after=_after(info, after_token),
            ):
                yield Order.from_document(cast("OrderDocument", doc))
        except ListenerDropped as exc:
            raise _dropped(exc) from None

    @strawberry.subscription(description="Products (or one product) as price or stock change.")
    async def product_updated(
        self, info: Info, id: strawberry.ID | None = None, after_token: str | None = None
    ) -> AsyncGenerator[Product, None]:
        product_id = None if id is None else id.lower()
        query: dict[str, Any] = {} if product_id is None else {"_id": product_id}
        try:
            async for doc in info.context.queries.feed.documents(
                "products",
                "products",
                query=query,
                match=lambda doc: product_id is None or doc["_id"] == product_id,
                after=_after(info, after_token),
                ids=None if product_id is None else frozenset({product_id}),
            ):
                yield Product.from_document(cast("ProductDocument", doc))
        except ListenerDropped as exc:
            raise _dropped(exc) from None

    @strawberry.subscription(description="The sales dashboard after every change (admin).")
    async def sales_dashboard_updated(self, info: Info) -> AsyncGenerator[SalesDashboard, None]:
        admin(info)
        try:
            async for _ in info.context.queries.feed.notices(["sales"]):
                doc = await read_dashboard(info, DEFAULT_DAYS, DEFAULT_TOP)
                yield SalesDashboard.from_document(doc)
        except ListenerDropped as exc:
            raise _dropped(exc) from None

    @strawberry.subscription(description="Each projection's progress after every batch (admin).")
    async def projection_progress(self, info: Info) -> AsyncGenerator[ProjectionStatus, None]:
        admin(info)
        read_model = info.context.queries.read_model
        try:
            async for notice in info.context.queries.feed.notices(
                ["orders", "products", "customers", "sales"]
            ):
                for status in await read_model.statuses():
                    if status.name == notice.projection:
                        yield ProjectionStatus.from_status(status)
        except ListenerDropped as exc:
            raise _dropped(exc) from None
