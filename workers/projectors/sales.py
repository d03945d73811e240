"""The `sales` projection: the admin dashboard's totals, daily buckets and top products.

Cancelled orders count for nothing: a cancellation reverses what its order added,
in the day bucket of the day the order was placed (which keeps its zeros).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from reads.documents import (
    SALES_DAILY,
    SALES_PRODUCTS,
    SALES_TOTALS,
    SALES_TOTALS_ID,
    DailySalesDocument,
    ProductSalesDocument,
    SalesTotalsDocument,
    event_time,
    sales_day,
)
from workers.projection import DocKey, Document, Documents, StoredEvent
from writes.events import OrderCancelled, OrderPlaced

_TOTALS = (SALES_TOTALS, SALES_TOTALS_ID)


class SalesProjector:
    """Order events move revenue and counts; catalog and customer events are ignored."""

    name: str = "sales"
    collections: tuple[str, ...] = (SALES_TOTALS, SALES_DAILY, SALES_PRODUCTS)

    def touches(self, event: StoredEvent) -> tuple[DocKey, ...]:
        match event.event:
            case OrderPlaced() | OrderCancelled() as order:
                day = (SALES_DAILY, sales_day(event_time(order.placed_at)))
                return (_TOTALS, day, *[(SALES_PRODUCTS, line.product_id) for line in order.lines])
        return ()

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        match event.event:
            case OrderPlaced() as placed:
                at = event_time(placed.placed_at)
                changes = _order(documents, event, placed.placed_at, 1, placed.total_cents, at)
                _sell(changes, documents, event, placed)
                return changes
            case OrderCancelled() as cancelled:
                at = event_time(cancelled.cancelled_at)
                total = cancelled.total_cents
                changes = _order(documents, event, cancelled.placed_at, -1, total, at)
                _take_back(changes, documents, event, cancelled)
                return changes
        return {}


def _sell(
    changes: dict[DocKey, Document], documents: Documents, event: StoredEvent, placed: OrderPlaced
) -> None:
    """Each line's units and revenue added to its product's sales, into `changes`."""
    for line in placed.lines:
        key = (SALES_PRODUCTS, line.product_id)
        before = _sold(changes, documents, key) or {
            "_id": line.product_id, "product_id": line.product_id, "name": line.name,
            "units_sold": 0, "revenue_cents": 0,
        }  # fmt: skip
        sold: ProductSalesDocument = {
            **before,
            "units_sold": before["units_sold"] + line.quantity,
            "revenue_cents": before["revenue_cents"] + line.line_total_cents,
            "position": event.position,
            # The name as of the latest order of the product.
            "product_id": line.product_id,
            "name": line.name,
        }
        changes[key] = sold


def _take_back(
    changes: dict[DocKey, Document],
    documents: Documents,
    event: StoredEvent,
    cancelled: OrderCancelled,
) -> None:
    """Each line taken off its product's sales, which keep their name; a product never
    counted stays absent (a cancellation only reverses what exists)."""
    for line in cancelled.lines:
        key = (SALES_PRODUCTS, line.product_id)
        if (before := _sold(changes, documents, key)) is not None:
            sold: ProductSalesDocument = {
                **before,
                "units_sold": before["units_sold"] - line.quantity,
                "revenue_cents": before["revenue_cents"] - line.line_total_cents,
                "position": event.position,
            }
            changes[key] = sold


def _order(
    documents: Documents, event: StoredEvent, placed_at: str, sign: int, total: int, at: datetime
) -> dict[DocKey, Document]:
    """The totals and the placing day's bucket, an order added (`sign` 1) or taken off (-1)."""
    return {
        _TOTALS: _totals(documents, event, sign * total, sign, at),
        **_daily(documents, event, placed_at, sign * total, sign),
    }


def _sold(
    changes: dict[DocKey, Document], documents: Documents, key: DocKey
) -> ProductSalesDocument | None:
    """A product's sales as this event left them so far (two lines may name it)."""
    return cast("ProductSalesDocument | None", changes.get(key) or documents.get(key))


def _totals(
    documents: Documents, event: StoredEvent, revenue: int, orders: int, at: datetime
) -> SalesTotalsDocument:
    totals = cast("SalesTotalsDocument | None", documents.get(_TOTALS))
    if totals is None:
        totals = {"_id": SALES_TOTALS_ID, "revenue_cents": 0, "order_count": 0,
                  "cancelled_count": 0, "updated_at": at}  # fmt: skip
    latest = totals["updated_at"]
    return {
        **totals,
        "revenue_cents": totals["revenue_cents"] + revenue,
        "order_count": totals["order_count"] + orders,
        "cancelled_count": totals["cancelled_count"] + (1 if orders < 0 else 0),
        # The latest moment, not the last event's: concurrent commands take their
        # timestamps before they queue for the event log, so the last event is not always
        # the latest moment, and the write store can only answer "the latest moment"
        # (see reads.fallback).
        "updated_at": at if at > latest else latest,
        "position": event.position,
    }


def _daily(
    documents: Documents, event: StoredEvent, placed_at: str, revenue: int, orders: int
) -> dict[DocKey, Document]:
    day = sales_day(event_time(placed_at))
    key = (SALES_DAILY, day)
    before = cast("DailySalesDocument | None", documents.get(key))
    if before is None:
        before = {"_id": day, "date": day, "revenue_cents": 0, "order_count": 0}
    daily: DailySalesDocument = {
        **before,
        "revenue_cents": before["revenue_cents"] + revenue,
        "order_count": before["order_count"] + orders,
        "date": day,
        "position": event.position,
    }
    return {key: daily}


PROJECTOR = SalesProjector()
