"""Orders as the API reads them: one by id, and a customer's history newest first."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from reads.paging import (
    Ordering,
    Page,
    SortField,
    canonical_id,
    check_page_size,
    decode_cursor,
    empty_page,
    keyset_page,
)

# Served by the `customer_newest_first` and `customer_status_newest_first` indexes.
NEWEST_FIRST = Ordering(
    "orders:newest_first",
    (SortField("placed_at", True, "datetime"), SortField("_id", True, "id")),
)


async def order_by_id(collection: AsyncCollection[Any], order_id: str) -> dict[str, Any] | None:
    """The `orders` document of `order_id`; None when the id is unknown or malformed."""
    canonical = canonical_id(order_id)
    if canonical is None:
        return None
    document: dict[str, Any] | None = await collection.find_one({"_id": canonical})
    return document


async def customer_orders(
    collection: AsyncCollection[Any],
    customer_id: str,
    *,
    first: int,
    after: str | None,
    status: str | None,
) -> Page[dict[str, Any]]:
    """A page of the customer's orders, newest first, optionally of one status only.

    PageSizeError for `first` outside 1..MAX_PAGE, BadCursor for a cursor this listing
    did not issue; a malformed customer id has no orders.
    """
    check_page_size(first)
    if after is not None:
        decode_cursor(after, NEWEST_FIRST)
    canonical = canonical_id(customer_id)
    if canonical is None:
        return empty_page()
    where: dict[str, Any] = {"customer.id": canonical}
    if status is not None:
        where["status"] = status
    return await keyset_page(collection, where, NEWEST_FIRST, first=first, after=after)
