"""The `products` projection: the catalog with live stock and units sold."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from reads.documents import PRODUCTS, ProductDocument, event_time
from workers.projection import DocKey, Document, Documents, StoredEvent
from writes.events import (
    OrderCancelled,
    OrderLineData,
    OrderPlaced,
    ProductCreated,
    ProductPriceChanged,
    ProductRestocked,
    RestockedLine,
)


class ProductsProjector:
    """Catalog events set the product; orders move its stock and units sold.

    Placing or cancelling an order changes `updated_at` (as the write store's row
    does) but not `version`, which counts catalog changes only. Events about a product
    the projection does not hold change nothing but its creation.
    """

    name: str = "products"
    collections: tuple[str, ...] = (PRODUCTS,)

    def touches(self, event: StoredEvent) -> tuple[DocKey, ...]:
        match event.event:
            case ProductCreated() | ProductPriceChanged() | ProductRestocked() as catalog:
                return ((PRODUCTS, catalog.product_id),)
            case OrderPlaced() | OrderCancelled() as order:
                return tuple([(PRODUCTS, line.product_id) for line in order.lines])
        return ()

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        match event.event:
            case ProductCreated() as created:
                key = (PRODUCTS, created.product_id)
                return {key: {**documents.get(key, {}), **_created(event, created)}}
            case ProductPriceChanged() as changed:
                key = (PRODUCTS, changed.product_id)
                if (product := _product(documents, key)) is None:
                    return {}
                priced: ProductDocument = {
                    **product,
                    "price_cents": changed.price_cents,
                    "version": event.stream_version,
                    "updated_at": event_time(changed.changed_at),
                    "position": event.position,
                }
                return {key: priced}
            case ProductRestocked() as restocked:
                at = event_time(restocked.restocked_at)
                moves = [(restocked.product_id, restocked.quantity, 0)]
                return _stock(documents, event, moves, at, version=event.stream_version)
            case OrderPlaced() as placed:
                at = event_time(placed.placed_at)
                return _stock(documents, event, _sold(placed.lines, -1), at)
            case OrderCancelled() as cancelled:
                at = event_time(cancelled.cancelled_at)
                return _stock(documents, event, _sold(cancelled.lines, 1), at)
        return {}


def _created(event: StoredEvent, created: ProductCreated) -> ProductDocument:
    return {
        "_id": created.product_id,
        "sku": created.sku,
        "name": created.name,
        "description": created.description,
        "price_cents": created.price_cents,
        "stock": created.stock,
        "in_stock": created.stock > 0,
        "units_sold": 0,
        "version": event.stream_version,
        "updated_at": event_time(created.created_at),
        "position": event.position,
    }


def _product(documents: Documents, key: DocKey) -> ProductDocument | None:
    return cast("ProductDocument | None", documents.get(key))


def _sold(lines: Iterable[OrderLineData | RestockedLine], sign: int) -> list[tuple[str, int, int]]:
    """(product, stock change, units sold change) of each line: `sign` is the stock's."""
    return [(line.product_id, sign * line.quantity, -sign * line.quantity) for line in lines]


def _stock(
    documents: Documents,
    event: StoredEvent,
    moves: list[tuple[str, int, int]],
    at: datetime,
    version: int | None = None,
) -> dict[DocKey, Document]:
    """Move products' stock and units sold, `in_stock` following the stock.

    Each move lands on top of what the same event moved already (an order may name a
    product on two lines); `version` is set when the move is a catalog change."""
    changes: dict[DocKey, ProductDocument] = {}
    for product_id, stock_delta, sold_delta in moves:
        key = (PRODUCTS, product_id)
        product = changes.get(key) or _product(documents, key)
        if product is None:
            continue
        stock = product["stock"] + stock_delta
        moved: ProductDocument = {
            **product,
            "stock": stock,
            "units_sold": product["units_sold"] + sold_delta,
            "in_stock": stock > 0,
            "updated_at": at,
            "position": event.position,
        }
        if product.get("position", 0) > event.position:
            # A parked order replayed after later ones (`shop projections retry`): its
            # units count, but the product was last changed by the later event, as the
            # write store's row says.
            moved["updated_at"], moved["position"] = product["updated_at"], product["position"]
        if version is not None:
            moved["version"] = version
        changes[key] = moved
    return dict(changes)


PROJECTOR = ProductsProjector()
