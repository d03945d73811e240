"""The `orders` projection: one order summary per order, customer and lines embedded."""

from __future__ import annotations

from typing import Any

from reads.documents import ORDERS, event_time
from workers.projection import DocKey, Document, Documents, StoredEvent
from writes.events import OrderCancelled, OrderPlaced, OrderShipped

_MOVES = {OrderCancelled.__name__: ("CANCELLED", "cancelled_at"),
          OrderShipped.__name__: ("SHIPPED", "shipped_at")}  # fmt: skip


class OrdersProjector:
    """OrderPlaced creates the summary; OrderCancelled / OrderShipped move its status."""

    name: str = "orders"
    collections: tuple[str, ...] = (ORDERS,)

    def touches(self, event: StoredEvent) -> tuple[DocKey, ...]:
        if event.type == OrderPlaced.__name__ or event.type in _MOVES:
            return ((ORDERS, event.data["order_id"]),)
        return ()

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        if event.type == OrderPlaced.__name__:
            key = (ORDERS, event.data["order_id"])
            return {key: {**documents.get(key, {}), **_placed(event)}}
        if moved := _MOVES.get(event.type):
            key = (ORDERS, event.data["order_id"])
            order = documents.get(key)
            if order is None:  # moves update an existing summary only
                return {}
            status, at = moved
            change = {
                "status": status,
                "updated_at": event_time(event.data[at]),
                "version": event.stream_version,
                "position": event.position,
            }
            return {key: {**order, **change}}
        return {}


def _placed(event: StoredEvent) -> Document:
    data = event.data
    placed_at = event_time(data["placed_at"])
    customer = data["customer"]
    document: dict[str, Any] = {
        "_id": data["order_id"],
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
    return document


PROJECTOR = OrdersProjector()
