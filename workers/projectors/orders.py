"""The `orders` projection: one order summary per order, customer and lines embedded."""

from __future__ import annotations

from typing import Any

from pymongo import UpdateOne

from reads.documents import ORDERS, event_time
from workers.projection import StoredEvent, Write
from writes.events import OrderCancelled, OrderPlaced, OrderShipped


class OrdersProjector:
    """OrderPlaced creates the summary; OrderCancelled / OrderShipped move its status."""

    name: str = "orders"
    collections: tuple[str, ...] = (ORDERS,)

    def apply(self, event: StoredEvent) -> list[Write]:
        """The writes `event` causes; [] for events this projector ignores."""
        if event.type == OrderPlaced.__name__:
            return [_placed(event)]
        if event.type == OrderCancelled.__name__:
            return [_moved(event, "CANCELLED", event.data["cancelled_at"])]
        if event.type == OrderShipped.__name__:
            return [_moved(event, "SHIPPED", event.data["shipped_at"])]
        return []


def _placed(event: StoredEvent) -> Write:
    data = event.data
    placed_at = event_time(data["placed_at"])
    customer = data["customer"]
    document: dict[str, Any] = {
        "customer": {"id": customer["id"], "name": customer["name"], "email": customer["email"]},
        "status": "PLACED",
        "lines": [
            {
                "product_id": line["product_id"],
                "sku": line["sku"],
                "name": line["name"],
                "unit_price_cents": line["unit_price_cents"],
                "quantity": line["quantity"],
                "line_total_cents": line["line_total_cents"],
            }
            for line in data["lines"]
        ],
        "item_count": data["item_count"],
        "total_cents": data["total_cents"],
        "placed_at": placed_at,
        "updated_at": placed_at,
        "version": event.stream_version,
        "position": event.position,
    }
    order_id = data["order_id"]
    return Write(ORDERS, order_id, UpdateOne({"_id": order_id}, {"$set": document}, upsert=True))


def _moved(event: StoredEvent, status: str, at: str) -> Write:
    order_id = event.data["order_id"]
    change = {
        "status": status,
        "updated_at": event_time(at),
        "version": event.stream_version,
        "position": event.position,
    }
    return Write(ORDERS, order_id, UpdateOne({"_id": order_id}, {"$set": change}))


PROJECTOR = OrdersProjector()
