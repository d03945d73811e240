"""The catalog as the API reads it: one product, the listing by name, and low stock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from reads.paging import Ordering, Page, SortField, canonical_id, keyset_page, page_request

# Served by the `catalog_by_name` index (and `catalog_text` for a search).
BY_NAME = Ordering(
    "products:by_name", (SortField("name", False, "str"), SortField("_id", False, "id"))
)
# Served by the `low_stock` index.
LOW_STOCK_FIRST = Ordering(
    "products:low_stock", (SortField("stock", False, "int"), SortField("_id", False, "id"))
)


@dataclass(frozen=True)
class SearchLimits:
    """The longest catalog search served: characters and whitespace-separated words."""

    max_characters: int
    max_words: int


class BadSearch(ValueError):
    """A catalog search beyond its SearchLimits, or with a character a store cannot hold."""


def check_search(search: str | None, limits: SearchLimits) -> None:
    """Refuse a search beyond `limits` (BadSearch), whichever store would answer it.

    Every word costs a text-index lookup on the projection and three ILIKE scans on the
    write store, so the bound keeps both paths as cheap as a short search.
    """
    if search is None:
        return
    if "\x00" in search:
        # PostgreSQL's text type cannot hold NUL: the write-store path could not run it.
        raise BadSearch("search must not contain NUL characters")
    if len(search) > limits.max_characters:
        raise BadSearch(
            f"search must be at most {limits.max_characters} characters long, "
            f"got {len(search)}: shorten it"
        )
    words = len(search.split())
    if words > limits.max_words:
        raise BadSearch(
            f"search must have at most {limits.max_words} words, got {words}: shorten it"
        )


async def product_by_id(
    collection: AsyncCollection[Any], product_id: str, fields: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """The `products` document of `product_id` (only `fields` of it, when given); None when
    the id is unknown or malformed."""
    canonical = canonical_id(product_id)
    if canonical is None:
        return None
    document: dict[str, Any] | None = await collection.find_one({"_id": canonical}, fields)
    return document


async def list_products(
    collection: AsyncCollection[Any],
    *,
    first: int | None,
    after: str | None,
    search: str | None,
    in_stock: bool | None,
    last: int | None = None,
    before: str | None = None,
) -> Page[dict[str, Any]]:
    """A page of the catalog ordered by name, then id: the `first` after `after`, or the
    `last` before `before`.

    `search` matches words of the name, SKU or description through the text index
    (MongoDB's `$text` syntax: any of the words, "quoted phrases", -excluded words);
    results keep the by-name order, so paging stays stable. A blank search is none.
    PageSizeError / BadCursor for a bad size / cursor.
    """
    request = page_request(BY_NAME, first=first, after=after, last=last, before=before)
    return await keyset_page(collection, catalog_filter(search, in_stock), BY_NAME, request)


async def count_products(
    collection: AsyncCollection[Any], *, search: str | None, in_stock: bool | None
) -> int:
    """How many products `list_products` would walk through with this search and filter."""
    count: int = await collection.count_documents(catalog_filter(search, in_stock))
    return count


def catalog_filter(search: str | None, in_stock: bool | None) -> dict[str, Any]:
    """The MongoDB filter of a catalog search; a blank search is none."""
    where: dict[str, Any] = {}
    if search is not None and search.strip():
        where["$text"] = {"$search": search}
    if in_stock is not None:
        where["in_stock"] = in_stock
    return where


async def low_stock(
    collection: AsyncCollection[Any],
    *,
    below: int,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> Page[dict[str, Any]]:
    """A page of the products with fewer than `below` in stock, lowest stock first.

    PageSizeError / BadCursor for a bad size / cursor.
    """
    request = page_request(LOW_STOCK_FIRST, first=first, after=after, last=last, before=before)
    return await keyset_page(collection, {"stock": {"$lt": below}}, LOW_STOCK_FIRST, request)


async def count_low_stock(collection: AsyncCollection[Any], *, below: int) -> int:
    """How many products have fewer than `below` in stock: a count over the `low_stock` index."""
    count: int = await collection.count_documents({"stock": {"$lt": below}})
    return count
