"""Live updates over websockets, fed by projection notifications.

Each subscriber gets only what it may read: customers their own orders, admins
everything; products are public. `afterToken` replays what changed since that
position, then the subscription goes live without a gap or a duplicate.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager

import strawberry

from reads.hub import ListenerDropped
from schema.context import Info
from schema.errors import ApiError
from schema.orders import Order
from schema.products import Product
from schema.projections import ProjectionStatus
from schema.reading import admin, coded_read_errors, may_read_order, read_dashboard, signed_in
from schema.sales import DEFAULT_DAYS, DEFAULT_TOP, SalesDashboard


def _after(info: Info, token: str | None) -> int | None:
    return None if token is None else info.context.consistency.position(token)


@contextmanager
def _stream_errors() -> Iterator[None]:
    """A dropped listener or a read-model outage, as the coded error ending the stream."""
    try:
        with coded_read_errors():
            yield
    except ListenerDropped as exc:
        raise ApiError("SUBSCRIPTION_DROPPED", f"this subscription was dropped: {exc}") from None


@strawberry.type
class Subscription:
    @strawberry.subscription(description="One order as it changes (its customer or an admin).")
    async def order_updated(self, info: Info, id: strawberry.ID) -> AsyncGenerator[Order, None]:
        # Another customer's order is silent, as an unknown id is: no existence oracle.
        actor = signed_in(info)
        with _stream_errors():
            async for doc in info.context.queries.feed.order(id):
                if may_read_order(actor, doc):
                    yield Order.from_document(doc)

    @strawberry.subscription(description="Your orders as they are placed and change.")
    async def my_orders_updated(
        self, info: Info, after_token: str | None = None
    ) -> AsyncGenerator[Order, None]:
        actor = signed_in(info)
        feed = info.context.queries.feed
        with _stream_errors():
            async for doc in feed.customer_orders(
                str(actor.customer_id), after=_after(info, after_token)
            ):
                yield Order.from_document(doc)

    @strawberry.subscription(description="Products (or one product) as price or stock change.")
    async def product_updated(
        self, info: Info, id: strawberry.ID | None = None, after_token: str | None = None
    ) -> AsyncGenerator[Product, None]:
        feed = info.context.queries.feed
        with _stream_errors():
            async for doc in feed.products(id, after=_after(info, after_token)):
                yield Product.from_document(doc)

    @strawberry.subscription(description="The sales dashboard after every change (admin).")
    async def sales_dashboard_updated(self, info: Info) -> AsyncGenerator[SalesDashboard, None]:
        admin(info)
        with _stream_errors():
            async for _ in info.context.queries.feed.sales_batches():
                doc = await read_dashboard(info, DEFAULT_DAYS, DEFAULT_TOP)
                yield SalesDashboard.from_document(doc)

    @strawberry.subscription(description="Each projection's progress after every batch (admin).")
    async def projection_progress(self, info: Info) -> AsyncGenerator[ProjectionStatus, None]:
        admin(info)
        with _stream_errors():
            async for status in info.context.queries.projection_progress():
                yield ProjectionStatus.from_status(status)
