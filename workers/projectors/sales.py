"""The `sales` projection: the admin dashboard's totals, daily buckets and top products.

Cancelled orders count for nothing: a cancellation reverses what its order added,
in the day bucket of the day the order was placed (which keeps its zeros).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from reads.documents import (
    SALES_DAILY,
    SALES_PRODUCTS,
    SALES_TOTALS,
    SALES_TOTALS_ID,
    event_time,
    sales_day,
)
from workers.projection import StoredEvent, Write
from writes.events import OrderCancelled, OrderPlaced


class SalesProjector:
    """Order events move revenue and counts; catalog and customer events are ignored."""

    name: str = "sales"
    collections: tuple[str, ...] = (SALES_TOTALS, SALES_DAILY, SALES_PRODUCTS)

    def apply(self, event: StoredEvent) -> list[Write]:
        """The writes `event` causes; [] for events this projector ignores."""
        data = event.data
        if event.type == OrderPlaced.__name__:
            total = data["total_cents"]
            writes = [
                _totals(event, total, 1, 0, event_time(data["placed_at"])),
                _daily(event, data["placed_at"], total, 1),
            ]
            for line in data["lines"]:
                product_id = line["product_id"]
                op = UpdateOne(
                    {"_id": product_id},
                    {
                        "$inc": {
                            "units_sold": line["quantity"],
                            "revenue_cents": line["line_total_cents"],
                        },
                        # The name as of the latest order of the product.
                        "$set": {
                            "product_id": product_id,
                            "name": line["name"],
                            "position": event.position,
                        },
                    },
                    upsert=True,
                )
                writes.append(Write(SALES_PRODUCTS, product_id, op))
            return writes
        if event.type == OrderCancelled.__name__:
            total = data["total_cents"]
            writes = [
                _totals(event, -total, -1, 1, event_time(data["cancelled_at"])),
                _daily(event, data["placed_at"], -total, -1),
            ]
            for line in data["lines"]:
                product_id = line["product_id"]
                op = UpdateOne(
                    {"_id": product_id},
                    {
                        "$inc": {
                            "units_sold": -line["quantity"],
                            "revenue_cents": -line["line_total_cents"],
                        },
                        "$set": {"position": event.position},
                    },
                )
                writes.append(Write(SALES_PRODUCTS, product_id, op))
            return writes
        return []


def _totals(event: StoredEvent, revenue: int, orders: int, cancelled: int, at: datetime) -> Write:
    update: dict[str, Any] = {
        "$inc": {"revenue_cents": revenue, "order_count": orders, "cancelled_count": cancelled},
        # $max, not $set: concurrent commands take their timestamps before they queue
        # for the event log, so the last event is not always the latest moment, and the
        # write store can only answer "the latest moment" (see reads.fallback).
        "$max": {"updated_at": at},
        "$set": {"position": event.position},
    }
    op = UpdateOne({"_id": SALES_TOTALS_ID}, update, upsert=True)
    return Write(SALES_TOTALS, SALES_TOTALS_ID, op)


def _daily(event: StoredEvent, placed_at: str, revenue: int, orders: int) -> Write:
    day = sales_day(event_time(placed_at))
    op = UpdateOne(
        {"_id": day},
        {
            "$inc": {"revenue_cents": revenue, "order_count": orders},
            "$set": {"date": day, "position": event.position},
        },
        upsert=True,
    )
    return Write(SALES_DAILY, day, op)


PROJECTOR = SalesProjector()
