"""Every Query field: thin resolvers over reads.service, permissions checked here."""

from __future__ import annotations

from importlib.metadata import version

import strawberry

from schema.connections import OrderConnection, ProductConnection, page_sizes
from schema.context import Info
from schema.customers import Customer
from schema.enums import OrderStatus
from schema.node import Node
from schema.orders import Order
from schema.products import Product
from schema.projections import ProjectionStatus
from schema.reading import (
    admin,
    coded_read_errors,
    may_read_order,
    read,
    read_dashboard,
    signed_in,
)
from schema.sales import DEFAULT_DAYS, DEFAULT_TOP, SalesDashboard
from writes.authorization import may_access

DEFAULT_PAGE = 20
DEFAULT_LOW_STOCK = 5


@strawberry.type
class Query:
    @strawberry.field(description="The version of the API server.")
    def api_version(self) -> str:
        return version("shop")

    @strawberry.field(description="Any object by its UUID; null when unknown or not yours.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        queries = info.context.queries
        actor = info.context.actor()
        order = await read(info, lambda at: queries.order(id, at))
        if order is not None:
            return Order.from_document(order) if may_read_order(actor, order) else None
        product = await read(info, lambda at: queries.product(id, at))
        if product is not None:
            return Product.from_document(product)
        if may_access(actor, id.lower()):
            customer = await read(info, lambda at: queries.customer(id, at))
            if customer is not None:
                return Customer.from_document(customer)
        return None

    @strawberry.field(description="The signed-in customer; null when not signed in.")
    async def me(self, info: Info) -> Customer | None:
        actor = info.context.actor()
        if actor is None:
            return None
        queries = info.context.queries
        doc = await read(info, lambda at: queries.customer(str(actor.customer_id), at))
        return None if doc is None else Customer.from_document(doc)

    @strawberry.field
    async def product(self, info: Info, id: strawberry.ID) -> Product | None:
        queries = info.context.queries
        doc = await read(info, lambda at: queries.product(id, at))
        return None if doc is None else Product.from_document(doc)

    @strawberry.field(description="The catalog by name; search is full-text.")
    async def products(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        search: str | None = None,
        in_stock: bool | None = None,
    ) -> ProductConnection:
        queries = info.context.queries
        first, last = page_sizes(info, first, last, DEFAULT_PAGE)
        page = await read(
            info,
            lambda at: queries.products(
                first=first,
                after=after,
                last=last,
                before=before,
                search=search,
                in_stock=in_stock,
                at=at,
            ),
        )

        async def count() -> int:
            return await read(
                info, lambda at: queries.count_products(search=search, in_stock=in_stock, at=at)
            )

        return ProductConnection.from_page(page, count)

    @strawberry.field(description="An order of yours (any, for an admin); else null.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        actor = signed_in(info)
        queries = info.context.queries
        doc = await read(info, lambda at: queries.order(id, at))
        # Another customer's order reads as an unknown one: no existence oracle.
        if doc is None or not may_read_order(actor, doc):
            return None
        return Order.from_document(doc)

    @strawberry.field(description="Your orders, newest first.")
    async def my_orders(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: OrderStatus | None = None,
    ) -> OrderConnection:
        actor = signed_in(info)
        queries = info.context.queries
        first, last = page_sizes(info, first, last, DEFAULT_PAGE)
        customer_id = str(actor.customer_id)
        status_value = None if status is None else status.value
        page = await read(
            info,
            lambda at: queries.customer_orders(
                customer_id,
                first=first,
                after=after,
                last=last,
                before=before,
                status=status_value,
                at=at,
            ),
        )

        async def count() -> int:
            return await read(
                info,
                lambda at: queries.count_customer_orders(customer_id, status=status_value, at=at),
            )

        return OrderConnection.from_page(page, count)

    @strawberry.field(description="Revenue, orders and best sellers (admin).")
    async def sales_dashboard(self, info: Info) -> SalesDashboard:
        return SalesDashboard.from_document(await read_dashboard(info, DEFAULT_DAYS, DEFAULT_TOP))

    @strawberry.field(description="Products running low, lowest stock first (admin).")
    async def inventory(
        self,
        info: Info,
        low_stock_below: int | None = DEFAULT_LOW_STOCK,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ProductConnection:
        admin(info)
        queries = info.context.queries
        first, last = page_sizes(info, first, last, DEFAULT_PAGE)
        below = _or(low_stock_below, DEFAULT_LOW_STOCK)
        page = await read(
            info,
            lambda at: queries.low_stock(
                below=below, first=first, after=after, last=last, before=before, at=at
            ),
        )

        async def count() -> int:
            return await read(info, lambda at: queries.count_low_stock(below=below, at=at))

        return ProductConnection.from_page(page, count)

    @strawberry.field(description="Where each projection stands (admin).")
    async def projections(self, info: Info) -> list[ProjectionStatus]:
        admin(info)
        with coded_read_errors():
            statuses = await info.context.queries.projection_statuses()
        return [ProjectionStatus.from_status(status) for status in statuses]


def _or(value: int | None, default: int) -> int:
    """An explicit null for an argument with a default means the default."""
    return default if value is None else value
