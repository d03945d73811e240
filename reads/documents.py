"""The read-model documents: their shapes, collection names, indexes and time values.

Projectors write these documents and the write-store fallback builds the very same
ones (without `position`), so both sides share the definitions here. Field names are
snake_case; `_id` is the UUID string (a date for daily buckets, "totals" for the
sales totals); datetimes are tz-aware UTC with millisecond precision, as BSON stores
them. Every projected document also carries `position`: the event-log position of
the event that last changed it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from pymongo import ASCENDING, DESCENDING, TEXT, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

# Logical collection names. A rebuild writes the same logical collections under other
# physical names, so code that touches MongoDB takes a logical -> physical mapping.
ORDERS = "orders"
PRODUCTS = "products"
CUSTOMERS = "customers"
SALES_TOTALS = "sales_totals"
SALES_DAILY = "sales_daily"
SALES_PRODUCTS = "sales_products"

COLLECTIONS = (ORDERS, PRODUCTS, CUSTOMERS, SALES_TOTALS, SALES_DAILY, SALES_PRODUCTS)

# The one document of `sales_totals`.
SALES_TOTALS_ID = "totals"

# The field every projected document carries and the fallback's documents lack.
POSITION = "position"

Document = Mapping[str, Any]


class OrderCustomerDocument(TypedDict):
    id: str
    name: str
    email: str


class OrderLineDocument(TypedDict):
    product_id: str
    sku: str
    name: str
    unit_price_cents: int
    quantity: int
    line_total_cents: int


class OrderDocument(TypedDict):
    _id: str
    customer: OrderCustomerDocument
    status: str
    lines: list[OrderLineDocument]
    item_count: int
    total_cents: int
    placed_at: datetime
    updated_at: datetime
    version: int
    position: NotRequired[int]


class ProductDocument(TypedDict):
    _id: str
    sku: str
    name: str
    description: str
    price_cents: int
    stock: int
    in_stock: bool
    units_sold: int
    version: int
    updated_at: datetime
    position: NotRequired[int]


class CustomerDocument(TypedDict):
    _id: str
    email: str
    name: str
    role: str
    order_count: int
    lifetime_value_cents: int
    position: NotRequired[int]


class SalesTotalsDocument(TypedDict):
    _id: str
    revenue_cents: int
    order_count: int
    cancelled_count: int
    updated_at: datetime
    position: NotRequired[int]


class DailySalesDocument(TypedDict):
    _id: str
    date: str
    revenue_cents: int
    order_count: int
    position: NotRequired[int]


class ProductSalesDocument(TypedDict):
    _id: str
    product_id: str
    name: str
    units_sold: int
    revenue_cents: int
    position: NotRequired[int]


INDEXES: dict[str, list[IndexModel]] = {
    ORDERS: [
        # A customer's order history, newest first, with a stable keyset tiebreak.
        IndexModel(
            [("customer.id", ASCENDING), ("placed_at", DESCENDING), ("_id", DESCENDING)],
            name="customer_newest_first",
        ),
        IndexModel(
            [
                ("customer.id", ASCENDING),
                ("status", ASCENDING),
                ("placed_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="customer_status_newest_first",
        ),
    ],
    PRODUCTS: [
        IndexModel(
            [("name", TEXT), ("sku", TEXT), ("description", TEXT)],
            name="catalog_text",
            weights={"name": 10, "sku": 10, "description": 1},
        ),
        IndexModel([("stock", ASCENDING), ("_id", ASCENDING)], name="low_stock"),
        IndexModel([("sku", ASCENDING)], name="sku"),
        IndexModel([("name", ASCENDING), ("_id", ASCENDING)], name="catalog_by_name"),
    ],
    SALES_PRODUCTS: [
        IndexModel([("units_sold", DESCENDING), ("_id", ASCENDING)], name="top_sellers"),
    ],
}


async def ensure_indexes(db: AsyncDatabase[Any], collections: Mapping[str, str]) -> None:
    """Create the indexes of every logical collection in `collections` on its physical one.

    `collections` maps logical names to physical ones (a rebuild builds under other
    names); logical collections not in the mapping are left alone. Creating an index
    that already exists with the same definition is a no-op.
    """
    for logical, physical in collections.items():
        models = INDEXES.get(logical)
        if models:
            await db[physical].create_indexes(models)


def document_time(moment: datetime) -> datetime:
    """`moment` as documents hold it: UTC, cut to milliseconds (BSON's precision)."""
    if moment.tzinfo is None:
        raise ValueError(f"a document time must be timezone-aware, got {moment!r}")
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


@functools.lru_cache(maxsize=4096)
def event_time(value: str) -> datetime:
    """An event payload's ISO-8601 timestamp as a document time.

    Cached: every projection parses the same event's timestamps (a rebuild folds a
    million events into four projections), and datetimes are immutable."""
    return document_time(datetime.fromisoformat(value))


def sales_day(placed_at: datetime) -> str:
    """The `sales_daily` bucket of an order: its placing day in UTC, as YYYY-MM-DD."""
    return placed_at.astimezone(UTC).date().isoformat()
