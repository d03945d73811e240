"""Where each plainly served GraphQL field sits in its read-model document.

The same mapping as the types' `from_document` constructors (schema/orders.py,
schema/products.py); the differential test (tests/integration/test_compiled_operations.py)
holds the two together field by field. A field that is not here is not compiled.
"""

from __future__ import annotations

from collections.abc import Callable

from schema.global_ids import order_line_id

# GraphQL type -> GraphQL field -> key in that type's document.
DOCUMENT_KEYS: dict[str, dict[str, str]] = {
    "Order": {
        "id": "_id",
        "status": "status",
        "customer": "customer",
        "lines": "lines",
        "itemCount": "item_count",
        "totalCents": "total_cents",
        "placedAt": "placed_at",
        "updatedAt": "updated_at",
        "version": "version",
    },
    "OrderCustomer": {"id": "id", "name": "name", "email": "email"},
    "OrderLine": {
        "productId": "product_id",
        "sku": "sku",
        "name": "name",
        "unitPriceCents": "unit_price_cents",
        "quantity": "quantity",
        "lineTotalCents": "line_total_cents",
    },
    "Product": {
        "id": "_id",
        "sku": "sku",
        "name": "name",
        "description": "description",
        "priceCents": "price_cents",
        "stock": "stock",
        "inStock": "in_stock",
        "unitsSold": "units_sold",
        "version": "version",
        "updatedAt": "updated_at",
    },
    # Connections: run.py shapes a page as {"edges": [{"cursor", "node"}], "page_info"}.
    "OrderConnection": {"edges": "edges", "pageInfo": "page_info"},
    "OrderEdge": {"cursor": "cursor", "node": "node"},
    "PageInfo": {
        "hasNextPage": "has_next",
        "endCursor": "end_cursor",
        "hasPreviousPage": "has_previous",
        "startCursor": "start_cursor",
    },
}

# Fields derived from where the document sits rather than read from it: (the owning
# document's id, the 1-based place in its list) -> the value.
PLACED_FIELDS: dict[tuple[str, str], Callable[[str, int], str]] = {
    ("OrderLine", "id"): order_line_id,
}
