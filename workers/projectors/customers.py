"""The `customers` projection: each customer with the statistics of their live orders."""

from __future__ import annotations

from reads.documents import CUSTOMERS
from workers.projection import DocKey, Document, Documents, StoredEvent
from writes.events import CustomerRegistered, OrderCancelled, OrderPlaced


class CustomersProjector:
    """Order count and lifetime value; a cancelled order counts for nothing."""

    name: str = "customers"
    collections: tuple[str, ...] = (CUSTOMERS,)

    def touches(self, event: StoredEvent) -> tuple[DocKey, ...]:
        customer_id = _customer_id(event)
        return () if customer_id is None else ((CUSTOMERS, customer_id),)

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        data = event.data
        if event.type == CustomerRegistered.__name__:
            key = (CUSTOMERS, data["customer_id"])
            registered = {
                "_id": data["customer_id"],
                "email": data["email"],
                "name": data["name"],
                "role": data["role"],
                "order_count": 0,
                "lifetime_value_cents": 0,
                "position": event.position,
            }
            return {key: {**documents.get(key, {}), **registered}}
        if event.type == OrderPlaced.__name__:
            return _count(event, documents, data["customer"]["id"], 1, data["total_cents"])
        if event.type == OrderCancelled.__name__:
            return _count(event, documents, data["customer_id"], -1, -data["total_cents"])
        return {}


def _customer_id(event: StoredEvent) -> str | None:
    if event.type == CustomerRegistered.__name__:
        return event.data["customer_id"]  # type: ignore[no-any-return]
    if event.type == OrderPlaced.__name__:
        return event.data["customer"]["id"]  # type: ignore[no-any-return]
    if event.type == OrderCancelled.__name__:
        return event.data["customer_id"]  # type: ignore[no-any-return]
    return None


def _count(
    event: StoredEvent, documents: Documents, customer_id: str, orders: int, cents: int
) -> dict[DocKey, Document]:
    key = (CUSTOMERS, customer_id)
    customer = documents.get(key)
    if customer is None:  # orders count for registered customers only
        return {}
    return {
        key: {
            **customer,
            "order_count": customer.get("order_count", 0) + orders,
            "lifetime_value_cents": customer.get("lifetime_value_cents", 0) + cents,
            "position": event.position,
        }
    }


PROJECTOR = CustomersProjector()
