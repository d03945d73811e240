"""The write-store fallback: the read-model documents, built from the normalized tables.

When a client's consistency token is ahead of a projection, queries answer from here
in exactly the shape the projectors write (less `position`), and `shop projections
verify` compares every projected document with the one built here. This is the one
module of `reads/` that may read the write model.

Every function issues a fixed number of queries, however many documents it builds.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from reads import view_documents
from reads._sql_window import SqlWindow
from reads.documents import (
    CUSTOMERS,
    ORDERS,
    PRODUCTS,
    SALES_DAILY,
    SALES_PRODUCTS,
    SALES_TOTALS,
    SALES_TOTALS_ID,
    CustomerDocument,
    DailySalesDocument,
    Document,
    OrderDocument,
    ProductDocument,
    ProductSalesDocument,
    SalesTotalsDocument,
    document_time,
)
from reads.orders import NEWEST_FIRST
from reads.paging import Page, PageRequest, empty_page, listing_page, page_request
from reads.products import BY_NAME, LOW_STOCK_FIRST
from reads.sales import assemble_dashboard, check_dashboard_arguments
from writes.models import Customer, EventRecord, Order, OrderLine, Product
from writes.views import (
    CustomerView,
    OrderCustomerView,
    OrderLineView,
    order_line_view,
    order_view,
    product_view,
)

PROJECTIONS = ("orders", "products", "customers", "sales")

_LIVE = Order.status != "CANCELLED"


async def order_document(session: AsyncSession, order_id: str) -> OrderDocument | None:
    """The `orders` document of one order; None when the id is unknown or malformed."""
    documents = await order_documents(session, [order_id])
    return documents[0] if documents else None


async def order_documents(session: AsyncSession, order_ids: Sequence[str]) -> list[OrderDocument]:
    """The `orders` documents of the known ones among `order_ids`, newest first."""
    ids = _uuids(order_ids)
    if not ids:
        return []
    return await _orders(session, Order.id.in_(ids))


async def log_head(session: AsyncSession) -> int:
    """The event log's last committed position (0 before the first event)."""
    head = await session.scalar(select(func.max(EventRecord.position)))
    return int(head or 0)


async def product_document(session: AsyncSession, product_id: str) -> ProductDocument | None:
    """The `products` document of one product; None when the id is unknown or malformed."""
    ids = _uuids([product_id])
    if not ids:
        return None
    documents = await _products(session, Product.id.in_(ids))
    return documents[0] if documents else None


async def customer_document(session: AsyncSession, customer_id: str) -> CustomerDocument | None:
    """The `customers` document of one customer; None when the id is unknown or malformed."""
    ids = _uuids([customer_id])
    if not ids:
        return None
    documents = await _customers(session, Customer.id.in_(ids))
    return documents[0] if documents else None


async def projection_documents(
    session: AsyncSession, projection_name: str
) -> dict[str, list[Document]]:
    """Every document of a projection, by logical collection (for verification).

    Run it in one REPEATABLE READ transaction for a consistent picture of a busy store.
    """
    result: dict[str, list[Document]] = {}
    if projection_name == "orders":
        result[ORDERS] = list(await _orders(session))
    elif projection_name == "products":
        result[PRODUCTS] = list(await _products(session))
    elif projection_name == "customers":
        result[CUSTOMERS] = list(await _customers(session))
    elif projection_name == "sales":
        totals = await sales_totals_document(session)
        result[SALES_TOTALS] = [] if totals is None else [totals]
        result[SALES_DAILY] = list(await sales_daily_documents(session))
        result[SALES_PRODUCTS] = list(await sales_product_documents(session))
    else:
        raise ValueError(f"unknown projection {projection_name!r}: expected one of {PROJECTIONS}")
    return result


async def sales_totals_document(session: AsyncSession) -> SalesTotalsDocument | None:
    """The dashboard totals, net of cancelled orders; None before the first order.

    `updated_at` is the latest moment an order was placed or cancelled.
    """
    cancelled = Order.status == "CANCELLED"
    changed_at = func.greatest(Order.placed_at, case((cancelled, Order.updated_at)))
    row = (
        await session.execute(
            select(
                func.count(),
                func.count(case((_LIVE, 1))),
                func.coalesce(func.sum(case((_LIVE, Order.total_cents), else_=0)), 0),
                func.count(case((cancelled, 1))),
                func.max(changed_at),
            )
        )
    ).one()
    orders, live, revenue, cancelled_count, updated_at = row
    if orders == 0:
        return None
    return {
        "_id": SALES_TOTALS_ID,
        "revenue_cents": int(revenue),
        "order_count": int(live),
        "cancelled_count": int(cancelled_count),
        "updated_at": document_time(updated_at),
    }


async def sales_daily_documents(session: AsyncSession) -> list[DailySalesDocument]:
    """One bucket per UTC day any order was placed on, net of cancelled orders, oldest first."""
    day = cast(func.timezone("UTC", Order.placed_at), Date).label("day")
    rows = await session.execute(
        select(
            day,
            func.count(case((_LIVE, 1))),
            func.coalesce(func.sum(case((_LIVE, Order.total_cents), else_=0)), 0),
        )
        .group_by(day)
        .order_by(day)
    )
    documents: list[DailySalesDocument] = []
    for placed_on, count, revenue in rows:
        assert isinstance(placed_on, date)
        key = placed_on.isoformat()
        documents.append(
            {"_id": key, "date": key, "revenue_cents": int(revenue), "order_count": int(count)}
        )
    return documents


async def sales_product_documents(session: AsyncSession) -> list[ProductSalesDocument]:
    """Units and revenue of every product on any order line, net of cancelled orders.

    The name is the line's name on the product's latest order.
    """
    live_quantity = case((_LIVE, OrderLine.quantity), else_=0)
    totals = await session.execute(
        select(
            OrderLine.product_id,
            func.sum(live_quantity),
            func.sum(live_quantity * OrderLine.unit_price_cents),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .group_by(OrderLine.product_id)
        .order_by(OrderLine.product_id)
    )
    newest_first = (
        select(
            OrderLine.product_id,
            OrderLine.name,
            func.row_number()
            .over(
                partition_by=OrderLine.product_id,
                order_by=(Order.placed_at.desc(), Order.id.desc()),
            )
            .label("rank"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .subquery()
    )
    latest_names = await session.execute(
        select(newest_first.c.product_id, newest_first.c.name).where(newest_first.c.rank == 1)
    )
    names = {product_id: name for product_id, name in latest_names}
    return [
        {
            "_id": str(product_id),
            "product_id": str(product_id),
            "name": names[product_id],
            "units_sold": int(units),
            "revenue_cents": int(revenue),
        }
        for product_id, units, revenue in totals
    ]


async def _orders(session: AsyncSession, *where: ColumnElement[bool]) -> list[OrderDocument]:
    """Orders matching `where` with their customers and lines, in two queries."""
    rows = (
        await session.execute(
            select(Order, Customer.name, Customer.email)
            .join(Customer, Customer.id == Order.customer_id)
            .where(*where)
            .order_by(Order.placed_at.desc(), Order.id.desc())
        )
    ).all()
    if not rows:
        return []
    # The same filter again (not an IN list of every id: a verify run may span more
    # orders than one statement can carry parameters). An order committed between the two
    # queries has lines here but no row above, and is left out.
    lines: dict[uuid.UUID, list[OrderLineView]] = {order.id: [] for order, _, _ in rows}
    for line in await session.scalars(
        select(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .where(*where)
        .order_by(OrderLine.order_id, OrderLine.line_no)
    ):
        if line.order_id in lines:
            lines[line.order_id].append(order_line_view(line))
    return [
        view_documents.order_document(
            order_view(order, OrderCustomerView(order.customer_id, name, email), lines[order.id])
        )
        for order, name, email in rows
    ]


async def _products(session: AsyncSession, *where: ColumnElement[bool]) -> list[ProductDocument]:
    products = await session.scalars(select(Product).where(*where).order_by(Product.id))
    return [view_documents.product_document(product_view(product)) for product in products]


async def _customers(session: AsyncSession, *where: ColumnElement[bool]) -> list[CustomerDocument]:
    """Customers with the count and value of their live orders (cancelled count for nothing)."""
    rows = await session.execute(
        select(
            Customer.id,
            Customer.email,
            Customer.name,
            Customer.role,
            func.count(case((_LIVE, 1))),
            func.coalesce(func.sum(case((_LIVE, Order.total_cents), else_=0)), 0),
        )
        .outerjoin(Order, Order.customer_id == Customer.id)
        .where(*where)
        .group_by(Customer.id)
        .order_by(Customer.id)
    )
    return [
        view_documents.customer_document(
            CustomerView(customer_id, email, name, role, int(count), int(value))
        )
        for customer_id, email, name, role, count, value in rows
    ]


def _uuids(raw_ids: Sequence[str]) -> list[uuid.UUID]:
    """The well-formed ids among `raw_ids`: a malformed id names nothing."""
    ids: list[uuid.UUID] = []
    for raw in raw_ids:
        try:
            ids.append(uuid.UUID(raw))
        except (ValueError, TypeError, AttributeError):
            continue
    return ids


async def customer_orders(
    session: AsyncSession,
    customer_id: str,
    *,
    first: int | None,
    after: str | None,
    status: str | None,
    last: int | None = None,
    before: str | None = None,
) -> Page[OrderDocument]:
    """reads.orders.customer_orders from the write store: the same page, cursors included.

    A keyset on (placed_at, id) over the `ix_orders_customer_placed` index picks the page,
    walking it in reverse for `last` (UUIDs order like their canonical strings, and
    placed_at is already cut to milliseconds, so the order is the projection's); then its
    orders and all their lines in two more queries. Run it in one REPEATABLE READ
    transaction for a status filter that holds even while a command changes an order of
    the page.
    """
    request = page_request(NEWEST_FIRST, first=first, after=after, last=last, before=before)
    ids = _uuids([customer_id])
    if not ids:
        return empty_page()
    window = SqlWindow(NEWEST_FIRST, (Order.placed_at, Order.id), _order_key)
    page_ids, has_next, has_previous = await window.ids(
        session, Order.id, _of_customer(ids[0], status), request
    )
    documents = await _orders(session, Order.id.in_(page_ids)) if page_ids else []
    return listing_page(documents, NEWEST_FIRST, has_next=has_next, has_previous=has_previous)


async def count_customer_orders(
    session: AsyncSession, customer_id: str, *, status: str | None
) -> int:
    """reads.orders.count_customer_orders from the write store."""
    ids = _uuids([customer_id])
    if not ids:
        return 0
    count = await session.scalar(
        select(func.count()).select_from(Order).where(*_of_customer(ids[0], status))
    )
    return int(count or 0)


def _of_customer(customer_id: uuid.UUID, status: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Order.customer_id == customer_id]
    if status is not None:
        where.append(Order.status == status)
    return where


def _order_key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    placed_at, order_id = values
    return placed_at, uuid.UUID(order_id)


async def list_products(
    session: AsyncSession,
    *,
    first: int | None,
    after: str | None,
    search: str | None,
    in_stock: bool | None,
    last: int | None = None,
    before: str | None = None,
) -> Page[ProductDocument]:
    """reads.products.list_products from the write store, with the same order and cursors.

    Names compare byte-wise (COLLATE "C"), as MongoDB compares strings. A search matches
    products whose name, SKU or description contains any of its words, case-insensitively:
    close to, but not exactly, MongoDB's stemmed text search.
    """
    request = page_request(BY_NAME, first=first, after=after, last=last, before=before)
    window = SqlWindow(BY_NAME, (Product.name.collate("C"), Product.id), _name_key)
    return await _product_page(session, window, _catalog_filter(search, in_stock), request)


async def count_products(
    session: AsyncSession, *, search: str | None, in_stock: bool | None
) -> int:
    """reads.products.count_products from the write store (with its search's caveat)."""
    count = await session.scalar(
        select(func.count()).select_from(Product).where(*_catalog_filter(search, in_stock))
    )
    return int(count or 0)


def _catalog_filter(search: str | None, in_stock: bool | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if search is not None and search.strip():
        words = [w.strip('"').lstrip("-") for w in search.split()]
        patterns = [f"%{_escape_like(w)}%" for w in words if w]
        where.append(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for pattern in patterns
                    for column in (Product.name, Product.sku, Product.description)
                )
            )
        )
    if in_stock is not None:
        where.append(Product.stock > 0 if in_stock else Product.stock <= 0)
    return where


def _name_key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    name, product_id = values
    return literal(name).collate("C"), uuid.UUID(product_id)


def _stock_key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    stock, product_id = values
    return stock, uuid.UUID(product_id)


async def low_stock(
    session: AsyncSession,
    *,
    below: int,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> Page[ProductDocument]:
    """reads.products.low_stock from the write store, with the same order and cursors."""
    request = page_request(LOW_STOCK_FIRST, first=first, after=after, last=last, before=before)
    window = SqlWindow(LOW_STOCK_FIRST, (Product.stock, Product.id), _stock_key)
    return await _product_page(session, window, [Product.stock < below], request)


async def count_low_stock(session: AsyncSession, *, below: int) -> int:
    """reads.products.count_low_stock from the write store."""
    count = await session.scalar(
        select(func.count()).select_from(Product).where(Product.stock < below)
    )
    return int(count or 0)


async def dashboard(session: AsyncSession, *, days: int, limit: int) -> dict[str, Any]:
    """reads.sales.dashboard from the write store."""
    check_dashboard_arguments(days, limit)
    totals: Mapping[str, Any] = await sales_totals_document(session) or {}
    daily = sorted(await sales_daily_documents(session), key=lambda d: d["_id"], reverse=True)
    sellers = [p for p in await sales_product_documents(session) if p["units_sold"] > 0]
    sellers.sort(key=lambda p: (-p["units_sold"], -p["revenue_cents"], p["_id"]))
    return assemble_dashboard(
        totals, [dict(d) for d in daily[:days]], [dict(p) for p in sellers[:limit]]
    )


async def _product_page(
    session: AsyncSession,
    window: SqlWindow,
    where: list[ColumnElement[bool]],
    request: PageRequest,
) -> Page[ProductDocument]:
    page_ids, has_next, has_previous = await window.ids(session, Product.id, where, request)
    if not page_ids:
        return listing_page([], window.ordering, has_next=has_next, has_previous=has_previous)
    found = {doc["_id"]: doc for doc in await _products(session, Product.id.in_(page_ids))}
    documents = [found[str(product_id)] for product_id in page_ids]
    return listing_page(documents, window.ordering, has_next=has_next, has_previous=has_previous)


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
