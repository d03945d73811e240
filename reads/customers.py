"""Customers as the API reads them."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from reads.paging import canonical_id


async def customer_by_id(
    collection: AsyncCollection[Any], customer_id: str
) -> dict[str, Any] | None:
    """The `customers` document of `customer_id`; None when the id is unknown or malformed."""
    canonical = canonical_id(customer_id)
    if canonical is None:
        return None
    document: dict[str, Any] | None = await collection.find_one({"_id": canonical})
    return document
