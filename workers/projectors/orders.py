"""The `orders` projection: one order summary per order, customer and lines embedded."""

from __future__ import annotations

from typing import cast

from reads.documents import ORDERS, OrderDocument, event_time
from workers.projection import DocKey, Document, Documents, StoredEvent
from writes.events import OrderCancelled, OrderPlaced, OrderShipped


class OrdersProjector:
    """OrderPlaced creates the summary; OrderCancelled / OrderShipped move its status."""

    name: str = "orders"
    collections: tuple[str, ...] = (ORDERS,)

    def touches(self, event: StoredEvent) -> tuple[DocKey, ...]:
        match event.event:
            case OrderPlaced() | OrderCancelled() | OrderShipped() as order:
                return ((ORDERS, order.order_id),)
        return ()

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        match event.event:
            case OrderPlaced() as placed:
                key = (ORDERS, placed.order_id)
                return {key: {**documents.get(key, {}), **_placed(event, placed)}}
            case OrderCancelled(order_id=order_id, cancelled_at=at):
                return _moved(event, documents, order_id, "CANCELLED", at)
            case OrderShipped(order_id=order_id, shipped_at=at):
                return _moved(event, documents, order_id, "SHIPPED", at)
        return {}


def _placed(event: StoredEvent, placed: OrderPlaced) -> OrderDocument:
    placed_at = event_time(placed.placed_at)
    customer = placed.customer
    return {
        "_id": placed.order_id,
        "customer": {"id": customer.id, "name": customer.name, "email": customer.email},
        "status": "PLACED",
        "lines": [
            {
                "product_id": line.product_id,
                "sku": line.sku,
                "name": line.name,
                "unit_price_cents": line.unit_price_cents,
                "quantity": line.quantity,
                "line_total_cents": line.line_total_cents,
            }
            for line in placed.lines
        ],
        "item_count": placed.item_count,
        "total_cents": placed.total_cents,
        "placed_at": placed_at,
        "updated_at": placed_at,
        "version": event.stream_version,
        "position": event.position,
    }


def _moved(
    event: StoredEvent, documents: Documents, order_id: str, status: str, at: str
) -> dict[DocKey, Document]:
    key = (ORDERS, order_id)
    if (found := documents.get(key)) is None:  # moves update an existing summary only
        return {}
    order = cast("OrderDocument", found)
    moved: OrderDocument = {
        **order,
        "status": status,
        "updated_at": event_time(at),
        "version": event.stream_version,
        "position": event.position,
    }
    return {key: moved}


PROJECTOR = OrdersProjector()
