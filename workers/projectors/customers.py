"""The `customers` projection: each customer with the statistics of their live orders."""

from __future__ import annotations

from pymongo import UpdateOne

from reads.documents import CUSTOMERS
from workers.projection import StoredEvent, Write
from writes.events import CustomerRegistered, OrderCancelled, OrderPlaced


class CustomersProjector:
    """Order count and lifetime value; a cancelled order counts for nothing."""

    name: str = "customers"
    collections: tuple[str, ...] = (CUSTOMERS,)

    def apply(self, event: StoredEvent) -> list[Write]:
        """The writes `event` causes; [] for events this projector ignores."""
        data = event.data
        if event.type == CustomerRegistered.__name__:
            customer_id = data["customer_id"]
            document = {
                "email": data["email"],
                "name": data["name"],
                "role": data["role"],
                "order_count": 0,
                "lifetime_value_cents": 0,
                "position": event.position,
            }
            op = UpdateOne({"_id": customer_id}, {"$set": document}, upsert=True)
            return [Write(CUSTOMERS, customer_id, op)]
        if event.type == OrderPlaced.__name__:
            return [_count(event, data["customer"]["id"], 1, data["total_cents"])]
        if event.type == OrderCancelled.__name__:
            return [_count(event, data["customer_id"], -1, -data["total_cents"])]
        return []


def _count(event: StoredEvent, customer_id: str, orders: int, cents: int) -> Write:
    op = UpdateOne(
        {"_id": customer_id},
        {
            "$inc": {"order_count": orders, "lifetime_value_cents": cents},
            "$set": {"position": event.position},
        },
    )
    return Write(CUSTOMERS, customer_id, op)


PROJECTOR = CustomersProjector()
