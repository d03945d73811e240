"""The read-model document of a write-side view: one adapter per read model.

Mutation payloads (schema/) and the write-store fallback (reads/fallback.py, which builds
views from the normalized rows) both take their documents from here, so a document's
shape outside the projectors is spelled once, and mypy checks it against
reads/documents.py. Times are cut as documents hold them (document_time).
"""

from __future__ import annotations

from reads.documents import (
    CustomerDocument,
    OrderDocument,
    OrderLineDocument,
    ProductDocument,
    document_time,
)
from writes.views import CustomerView, OrderLineView, OrderView, ProductView


def order_document(view: OrderView) -> OrderDocument:
    """The `orders` document of an order (without `position`)."""
    return {
        "_id": str(view.id),
        "customer": {
            "id": str(view.customer.id),
            "name": view.customer.name,
            "email": view.customer.email,
        },
        "status": view.status,
        "lines": [_line_document(line) for line in view.lines],
        "item_count": view.item_count,
        "total_cents": view.total_cents,
        "placed_at": document_time(view.placed_at),
        "updated_at": document_time(view.updated_at),
        "version": view.version,
    }


def _line_document(line: OrderLineView) -> OrderLineDocument:
    return {
        "product_id": str(line.product_id),
        "sku": line.sku,
        "name": line.name,
        "unit_price_cents": line.unit_price_cents,
        "quantity": line.quantity,
        "line_total_cents": line.line_total_cents,
    }


def product_document(view: ProductView) -> ProductDocument:
    """The `products` document of a product (without `position`)."""
    return {
        "_id": str(view.id),
        "sku": view.sku,
        "name": view.name,
        "description": view.description,
        "price_cents": view.price_cents,
        "stock": view.stock,
        "in_stock": view.stock > 0,
        "units_sold": view.units_sold,
        "version": view.version,
        "updated_at": document_time(view.updated_at),
    }


def customer_document(view: CustomerView) -> CustomerDocument:
    """The `customers` document of a customer (without `position`)."""
    return {
        "_id": str(view.id),
        "email": view.email,
        "name": view.name,
        "role": view.role,
        "order_count": view.order_count,
        "lifetime_value_cents": view.lifetime_value_cents,
    }
