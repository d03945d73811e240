"""The `sales` projection: the admin dashboard's totals, daily buckets and top products.

Cancelled orders count for nothing: a cancellation reverses what its order added,
in the day bucket of the day the order was placed (which keeps its zeros).
"""

from __future__ import annotations

from datetime import datetime

from reads.documents import (
    SALES_DAILY,
    SALES_PRODUCTS,
    SALES_TOTALS,
    SALES_TOTALS_ID,
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
        if event.type not in (OrderPlaced.__name__, OrderCancelled.__name__):
            return ()
        data = event.data
        day = (SALES_DAILY, sales_day(event_time(data["placed_at"])))
        return (_TOTALS, day, *[(SALES_PRODUCTS, line["product_id"]) for line in data["lines"]])

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        data = event.data
        placed = event.type == OrderPlaced.__name__
        if not placed and event.type != OrderCancelled.__name__:
            return {}
        sign = 1 if placed else -1
        at = event_time(data["placed_at"] if placed else data["cancelled_at"])
        total = sign * data["total_cents"]
        changes = {
            _TOTALS: _totals(documents.get(_TOTALS), event, total, sign, at),
            **_daily(documents, event, data["placed_at"], total, sign),
        }
        for line in data["lines"]:
            key = (SALES_PRODUCTS, line["product_id"])
            sold = changes.get(key) or documents.get(key)
            if sold is None and not placed:  # a cancellation only reverses what exists
                continue
            before = sold or {"_id": line["product_id"]}
            changes[key] = {
                **before,
                "units_sold": before.get("units_sold", 0) + sign * line["quantity"],
                "revenue_cents": before.get("revenue_cents", 0) + sign * line["line_total_cents"],
                "position": event.position,
                # The name as of the latest order of the product.
                **({"product_id": line["product_id"], "name": line["name"]} if placed else {}),
            }
        return changes


def _totals(
    totals: Document | None, event: StoredEvent, revenue: int, orders: int, at: datetime
) -> Document:
    before = totals or {"_id": SALES_TOTALS_ID}
    latest = before.get("updated_at")
    return {
        **before,
        "revenue_cents": before.get("revenue_cents", 0) + revenue,
        "order_count": before.get("order_count", 0) + orders,
        "cancelled_count": before.get("cancelled_count", 0) + (1 if orders < 0 else 0),
        # The latest moment, not the last event's: concurrent commands take their
        # timestamps before they queue for the event log, so the last event is not always
        # the latest moment, and the write store can only answer "the latest moment"
        # (see reads.fallback).
        "updated_at": at if latest is None or at > latest else latest,
        "position": event.position,
    }


def _daily(
    documents: Documents, event: StoredEvent, placed_at: str, revenue: int, orders: int
) -> dict[DocKey, Document]:
    day = sales_day(event_time(placed_at))
    key = (SALES_DAILY, day)
    before = documents.get(key) or {"_id": day}
    return {
        key: {
            **before,
            "revenue_cents": before.get("revenue_cents", 0) + revenue,
            "order_count": before.get("order_count", 0) + orders,
            "date": day,
            "position": event.position,
        }
    }


PROJECTOR = SalesProjector()
