"""The `customers` projection: each customer with the statistics of their live orders."""

from __future__ import annotations

from typing import cast

from reads.documents import CUSTOMERS, CustomerDocument
from workers.projection import DocKey, Document, Documents, StoredEvent
from writes.events import CustomerRegistered, OrderCancelled, OrderPlaced


class CustomersProjector:
    """Order count and lifetime value; a cancelled order counts for nothing."""

    name: str = "customers"
    collections: tuple[str, ...] = (CUSTOMERS,)

    def touches(self, event: StoredEvent) -> tuple[DocKey, ...]:
        match event.event:
            case (
                CustomerRegistered(customer_id=customer_id)
                | OrderCancelled(customer_id=customer_id)
            ):
                return ((CUSTOMERS, customer_id),)
            case OrderPlaced() as placed:
                return ((CUSTOMERS, placed.customer.id),)
        return ()

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        match event.event:
            case CustomerRegistered() as registered:
                key = (CUSTOMERS, registered.customer_id)
                customer: CustomerDocument = {
                    "_id": registered.customer_id,
                    "email": registered.email,
                    "name": registered.name,
                    "role": registered.role,
                    "order_count": 0,
                    "lifetime_value_cents": 0,
                    "position": event.position,
                }
                return {key: {**documents.get(key, {}), **customer}}
            case OrderPlaced() as placed:
                return _count(event, documents, placed.customer.id, 1, placed.total_cents)
            case OrderCancelled() as cancelled:
                return _count(event, documents, cancelled.customer_id, -1, -cancelled.total_cents)
        return {}


def _count(
    event: StoredEvent, documents: Documents, customer_id: str, orders: int, cents: int
) -> dict[DocKey, Document]:
    key = (CUSTOMERS, customer_id)
    if (found := documents.get(key)) is None:  # orders count for registered customers only
        return {}
    customer = cast("CustomerDocument", found)
    counted: CustomerDocument = {
        **customer,
        "order_count": customer["order_count"] + orders,
        "lifetime_value_cents": customer["lifetime_value_cents"] + cents,
        "position": event.position,
    }
    return {key: counted}


PROJECTOR = CustomersProjector()
