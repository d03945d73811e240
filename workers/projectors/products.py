"""The `products` projection: the catalog with live stock and units sold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from reads.documents import PRODUCTS, event_time
from workers.projection import StoredEvent, Write
from writes.events import (
    OrderCancelled,
    OrderPlaced,
    ProductCreated,
    ProductPriceChanged,
    ProductRestocked,
)

# The second stage of every stock-changing update pipeline: `in_stock` follows the
# stock the first stage computed, inside the same atomic update.
_IN_STOCK = {"$set": {"in_stock": {"$gt": ["$stock", 0]}}}


class ProductsProjector:
    """Catalog events set the product; orders move its stock and units sold.

    Placing or cancelling an order changes `updated_at` (as the write store's row
    does) but not `version`, which counts catalog changes only.
    """

    name: str = "products"
    collections: tuple[str, ...] = (PRODUCTS,)

    def apply(self, event: StoredEvent) -> list[Write]:
        """The writes `event` causes; [] for events this projector ignores."""
        data = event.data
        if event.type == ProductCreated.__name__:
            return [_created(event)]
        if event.type == ProductPriceChanged.__name__:
            change = {
                "price_cents": data["price_cents"],
                "version": event.stream_version,
                "updated_at": event_time(data["changed_at"]),
                "position": event.position,
            }
            op = UpdateOne({"_id": data["product_id"]}, {"$set": change})
            return [Write(PRODUCTS, data["product_id"], op)]
        if event.type == ProductRestocked.__name__:
            extra = {"version": event.stream_version}
            at = event_time(data["restocked_at"])
            return [_stock(event, data["product_id"], data["quantity"], 0, at, extra)]
        if event.type == OrderPlaced.__name__:
            at = event_time(data["placed_at"])
            return [
                _stock(event, line["product_id"], -line["quantity"], line["quantity"], at)
                for line in data["lines"]
            ]
        if event.type == OrderCancelled.__name__:
            at = event_time(data["cancelled_at"])
            return [
                _stock(event, line["product_id"], line["quantity"], -line["quantity"], at)
                for line in data["lines"]
            ]
        return []


def _created(event: StoredEvent) -> Write:
    data = event.data
    document = {
        "sku": data["sku"],
        "name": data["name"],
        "description": data["description"],
        "price_cents": data["price_cents"],
        "stock": data["stock"],
        "in_stock": data["stock"] > 0,
        "units_sold": 0,
        "version": event.stream_version,
        "updated_at": event_time(data["created_at"]),
        "position": event.position,
    }
    product_id = data["product_id"]
    op = UpdateOne({"_id": product_id}, {"$set": document}, upsert=True)
    return Write(PRODUCTS, product_id, op)


def _stock(
    event: StoredEvent,
    product_id: str,
    stock_delta: int,
    sold_delta: int,
    at: datetime,
    extra: dict[str, Any] | None = None,
) -> Write:
    """Move a product's stock and units sold, keeping `in_stock` right in the same update."""
    values = {"updated_at": at, "position": event.position, **(extra or {})}
    first_stage = {
        "stock": {"$add": ["$stock", stock_delta]},
        "units_sold": {"$add": ["$units_sold", sold_delta]},
        # Pipeline stages read strings starting with "$" as field paths: quote values.
        **{field: {"$literal": value} for field, value in values.items()},
    }
    op = UpdateOne({"_id": product_id}, [{"$set": first_stage}, _IN_STOCK])
    return Write(PRODUCTS, product_id, op)


PROJECTOR = ProductsProjector()
