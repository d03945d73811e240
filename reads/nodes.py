"""`node(id:)`: whichever order, product or customer a UUID names."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from reads.paging import canonical_id


async def find_node(
    orders: AsyncCollection[Any],
    products: AsyncCollection[Any],
    customers: AsyncCollection[Any],
    node_id: str,
) -> tuple[str, dict[str, Any]] | None:
    """("Order" | "Product" | "Customer", document) for `node_id`; None when unknown/malformed.

    Ids are unique across types. Collections of one database are searched in a single
    aggregation (`$unionWith`); otherwise the three lookups run concurrently.
    """
    canonical = canonical_id(node_id)
    if canonical is None:
        return None
    typed = (("Order", orders), ("Product", products), ("Customer", customers))
    if len({coll.database.name for _, coll in typed}) == 1:
        return await _in_one_round_trip(typed, canonical)
    found = await asyncio.gather(*(coll.find_one({"_id": canonical}) for _, coll in typed))
    for (type_name, _), document in zip(typed, found, strict=True):
        if document is not None:
            return type_name, document
    return None


async def _in_one_round_trip(
    typed: tuple[tuple[str, AsyncCollection[Any]], ...], node_id: str
) -> tuple[str, dict[str, Any]] | None:
    def lookup(type_name: str) -> list[dict[str, Any]]:
        return [
            {"$match": {"_id": node_id}},
            {"$replaceWith": {"type": {"$literal": type_name}, "document": "$$ROOT"}},
        ]

    (first_type, first), *others = typed
    pipeline = lookup(first_type)
    for type_name, coll in others:
        pipeline.append({"$unionWith": {"coll": coll.name, "pipeline": lookup(type_name)}})
    pipeline.append({"$limit": 1})
    cursor = await first.aggregate(pipeline)
    found: list[dict[str, Any]] = await cursor.to_list()
    if not found:
        return None
    return found[0]["type"], found[0]["document"]
