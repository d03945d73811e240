"""The admin sales dashboard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry

from reads.documents import DailySalesDocument, ProductSalesDocument
from schema.context import Info
from schema.global_ids import SALES_DASHBOARD_ID, derived_id
from schema.scalars import Cents

DEFAULT_DAYS = 30
DEFAULT_TOP = 10
# A dashboard with no orders yet was last updated never: the epoch says so in a DateTime!.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@strawberry.type
class DailyRevenue:
    id: strawberry.ID = strawberry.field(description="Unique across all types; one per day.")
    date: str
    revenue_cents: Cents
    order_count: int

    @classmethod
    def from_document(cls, doc: DailySalesDocument) -> DailyRevenue:
        return cls(
            id=derived_id("DailyRevenue", doc["date"]),
            date=doc["date"],
            revenue_cents=Cents(doc["revenue_cents"]),
            order_count=doc["order_count"],
        )


@strawberry.type
class TopProduct:
    id: strawberry.ID = strawberry.field(
        description="Unique across all types; one per product (not the product's own id)."
    )
    product_id: strawberry.ID
    name: str
    units_sold: int
    revenue_cents: Cents

    @classmethod
    def from_document(cls, doc: ProductSalesDocument) -> TopProduct:
        return cls(
            id=derived_id("TopProduct", doc["product_id"]),
            product_id=strawberry.ID(doc["product_id"]),
            name=doc["name"],
            units_sold=doc["units_sold"],
            revenue_cents=Cents(doc["revenue_cents"]),
        )


@strawberry.type
class SalesDashboard:
    id: strawberry.ID = strawberry.field(
        description="Unique across all types; there is one dashboard."
    )
    revenue_cents: Cents
    order_count: int
    cancelled_count: int
    average_order_cents: Cents
    updated_at: datetime
    _doc: strawberry.Private[dict[str, Any]]

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> SalesDashboard:
        return cls(
            id=SALES_DASHBOARD_ID,
            revenue_cents=Cents(doc["revenue_cents"]),
            order_count=doc["order_count"],
            cancelled_count=doc["cancelled_count"],
            average_order_cents=Cents(doc["average_order_cents"]),
            updated_at=doc["updated_at"] or NEVER,
            _doc=doc,
        )

    @strawberry.field(description="Revenue per day, newest first (1 to 366 days).")
    async def daily(self, info: Info, days: int | None = DEFAULT_DAYS) -> list[DailyRevenue]:
        days = DEFAULT_DAYS if days is None else days
        doc = self._doc if days == DEFAULT_DAYS else await _dashboard(info, days, DEFAULT_TOP)
        return [DailyRevenue.from_document(day) for day in doc["daily"]]

    @strawberry.field(description="Best sellers by units sold (1 to 100).")
    async def top_products(self, info: Info, limit: int | None = DEFAULT_TOP) -> list[TopProduct]:
        limit = DEFAULT_TOP if limit is None else limit
        doc = self._doc if limit == DEFAULT_TOP else await _dashboard(info, DEFAULT_DAYS, limit)
        return [TopProduct.from_document(product) for product in doc["top_products"]]


async def _dashboard(info: Info, days: int, limit: int) -> dict[str, Any]:
    from schema.reading import read_dashboard

    return await read_dashboard(info, days, limit)
