"""The `products` projection: the catalog with live stock and units sold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reads.documents import PRODUCTS, event_time
from workers.projection import DocKey, Document, Documents, StoredEvent
from writes.events import (
    OrderCancelled,
    OrderPlaced,
    ProductCreated,
    ProductPriceChanged,
    ProductRestocked,
)

_CATALOG = (ProductCreated.__name__, ProductPriceChanged.__name__, ProductRestocked.__name__)
_ORDERS = (OrderPlaced.__name__, OrderCancelled.__name__)


class ProductsProjector:
    """Catalog events set the product; orders move its stock and units sold.

    Placing or cancelling an order changes `updated_at` (as the write store's row
    does) but not `version`, which counts catalog changes only. Events about a product
    the projection does not hold change nothing but its creation.
    """

    name: str = "products"
    collections: tuple[str, ...] = (PRODUCTS,)

    def touches(self, event: StoredEvent) -> tuple[DocKey, ...]:
        if event.type in _CATALOG:
            return ((PRODUCTS, event.data["product_id"]),)
        if event.type in _ORDERS:
            return tuple([(PRODUCTS, line["product_id"]) for line in event.data["lines"]])
        return ()

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        data = event.data
        if event.type == ProductCreated.__name__:
            key = (PRODUCTS, data["product_id"])
            return {key: {**documents.get(key, {}), **_created(event)}}
        if event.type == ProductPriceChanged.__name__:
            change = {
                "price_cents": data["price_cents"],
                "version": event.stream_version,
                "updated_at": event_time(data["changed_at"]),
                "position": event.position,
            }
            return _changed(documents, data["product_id"], change)
        changes: dict[DocKey, Document] = {}
        if event.type == ProductRestocked.__name__:
            extra = {"version": event.stream_version}
            at = event_time(data["restocked_at"])
            _stock(changes, documents, event, data["product_id"], data["quantity"], 0, at, extra)
        elif event.type in _ORDERS:
            placed = event.type == OrderPlaced.__name__
            at = event_time(data["placed_at"] if placed else data["cancelled_at"])
            sign = -1 if placed else 1
            for line in data["lines"]:
                quantity = line["quantity"]
                _stock(changes, documents, event, line["product_id"], sign * quantity,
                       -sign * quantity, at)  # fmt: skip
        return changes


def _created(event: StoredEvent) -> Document:
    data = event.data
    return {
        "_id": data["product_id"],
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


def _changed(documents: Documents, product_id: str, change: Document) -> dict[DocKey, Document]:
    key = (PRODUCTS, product_id)
    product = documents.get(key)
    return {} if product is None else {key: {**product, **change}}


def _stock(
    changes: dict[DocKey, Document],
    documents: Documents,
    event: StoredEvent,
    product_id: str,
    stock_delta: int,
    sold_delta: int,
    at: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    """Move a product's stock and units sold, `in_stock` following the stock.

    Into `changes`, on top of what the same event changed already (an order may name a
    product on two lines)."""
    key = (PRODUCTS, product_id)
    product = changes.get(key) or documents.get(key)
    if product is None:
        return
    stock = product["stock"] + stock_delta
    changes[key] = {
        **product,
        "stock": stock,
        "units_sold": product["units_sold"] + sold_delta,
        "in_stock": stock > 0,
        "updated_at": at,
        "position": event.position,
        **(extra or {}),
    }


PROJECTOR = ProductsProjector()
