"""`node(id:)`: whichever order, product or customer a UUID names, in one read.

Node ids are the objects' own UUIDs (the contract's `node(id:)` takes the id an object
carries), unique across types, so the id does not say which collection holds it: one
aggregation looks in all three (`$unionWith`), a single round trip whatever the type.
The write store answers the same question in reads.fallback's documents (see
`written_node`), for a token ahead of the projections or MongoDB down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from pymongo.asynchronous.collection import AsyncCollection
from sqlalchemy.ext.asyncio import AsyncSession

from reads import fallback
from reads.documents import CustomerDocument, OrderDocument, ProductDocument
from reads.paging import canonical_id


@dataclass(frozen=True)
class FoundOrder:
    document: OrderDocument


@dataclass(frozen=True)
class FoundProduct:
    document: ProductDocument


@dataclass(frozen=True)
class FoundCustomer:
    document: CustomerDocument


FoundNode = FoundOrder | FoundProduct | FoundCustomer


async def find_node(
    orders: AsyncCollection[Any],
    products: AsyncCollection[Any],
    customers: AsyncCollection[Any],
    node_id: str,
) -> FoundNode | None:
    """The order, product or customer `node_id` names; None when unknown or malformed.

    The three collections are of one database (the read model's), as `$unionWith` needs.
    """
    canonical = canonical_id(node_id)
    if canonical is None:
        return None

    def lookup(type_name: str) -> list[dict[str, Any]]:
        return [
            {"$match": {"_id": canonical}},
            {"$replaceWith": {"type": {"$literal": type_name}, "document": "$$ROOT"}},
        ]

    pipeline = [
        *lookup("Order"),
        {"$unionWith": {"coll": products.name, "pipeline": lookup("Product")}},
        {"$unionWith": {"coll": customers.name, "pipeline": lookup("Customer")}},
        {"$limit": 1},
    ]
    cursor = await orders.aggregate(pipeline)
    found: list[dict[str, Any]] = await cursor.to_list()
    if not found:
        return None
    document = found[0]["document"]
    if found[0]["type"] == "Order":
        return FoundOrder(cast("OrderDocument", document))
    if found[0]["type"] == "Product":
        return FoundProduct(cast("ProductDocument", document))
    return FoundCustomer(cast("CustomerDocument", document))


async def written_node(session: AsyncSession, node_id: str) -> FoundNode | None:
    """`find_node` from the write store: the same documents, from reads.fallback."""
    order = await fallback.order_document(session, node_id)
    if order is not None:
        return FoundOrder(order)
    product = await fallback.product_document(session, node_id)
    if product is not None:
        return FoundProduct(product)
    customer = await fallback.customer_document(session, node_id)
    return None if customer is None else FoundCustomer(customer)
