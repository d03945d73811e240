"""Orders as the API reads them: one by id, and a customer's history newest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from reads.paging import (
    Ordering,
    Page,
    SortField,
    canonical_id,
    empty_page,
    keyset_page,
    page_request,
)

# Served by the `customer_newest_first` and `customer_status_newest_first` indexes.
NEWEST_FIRST = Ordering(
    "orders:newest_first",
    (SortField("placed_at", True, "datetime"), SortField("_id", True, "id")),
)


async def order_by_id(
    collection: AsyncCollection[Any], order_id: str, fields: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """The `orders` document of `order_id` (only `fields` of it, when given); None when the
    id is unknown or malformed."""
    canonical = canonical_id(order_id)
    if canonical is None:
        return None
    document: dict[str, Any] | None = await collection.find_one({"_id": canonical}, fields)
    return document


async def customer_orders(
    collection: AsyncCollection[Any],
    customer_id: str,
    *,
    first: int | None,
    after: str | None,
    status: str | None,
    last: int | None = None,
    before: str | None = None,
) -> Page[dict[str, Any]]:
    """A page of the customer's orders, newest first, optionally of one status only:
    the `first` after `after`, or the `last` before `before`.

    PageSizeError for a size outside 1..MAX_PAGE or both `first` and `last`, BadCursor
    for a cursor this listing did not issue; a malformed customer id has no orders.
    """
    request = page_request(NEWEST_FIRST, first=first, after=after, last=last, before=before)
    canonical = canonical_id(customer_id)
    if canonical is None:
        return empty_page()
    return await keyset_page(collection, _of_customer(canonical, status), NEWEST_FIRST, request)


async def count_customer_orders(
    collection: AsyncCollection[Any], customer_id: str, *, status: str | None
) -> int:
    """How many orders the customer has (of `status`): a count over the prefix of the
    `customer_newest_first` (or `customer_status_newest_first`) index."""
    canonical = canonical_id(customer_id)
    if canonical is None:
        return 0
    count: int = await collection.count_documents(_of_customer(canonical, status))
    return count


def _of_customer(customer_id: str, status: str | None) -> dict[str, Any]:
    where: dict[str, Any] = {"customer.id": customer_id}
    if status is not None:
        where["status"] = status
    return where
