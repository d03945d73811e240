"""Relay cursor connections over keyset pages, both ways, with a lazily read total."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry.types.nodes import SelectedField

from reads.documents import OrderDocument, ProductDocument
from reads.paging import Page
from schema.context import Info
from schema.errors import ApiError
from schema.orders import Order
from schema.products import Product

Count = Callable[[], Awaitable[int]]


@strawberry.type(description="Where a page sits in its listing (Relay cursor connections).")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
    has_previous_page: bool = strawberry.field(
        description="Whether items come before this page: for `last`, more than were asked "
        "for; for `after`, any at or before that cursor."
    )
    start_cursor: str | None = strawberry.field(
        description="The first edge's cursor: pass it as `before` to page backward."
    )

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(
            has_next_page=page.has_next,
            end_cursor=page.end_cursor,
            has_previous_page=page.has_previous,
            start_cursor=page.start_cursor,
        )


@strawberry.type
class ProductEdge:
    cursor: str
    node: Product


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
    _count: strawberry.Private[Count]

    @strawberry.field(description="How many products the whole listing holds, on every page.")
    async def total_count(self) -> int:
        return await self._count()

    @classmethod
    def from_page(cls, page: Page[ProductDocument], count: Count) -> ProductConnection:
        return cls(
            edges=[
                ProductEdge(cursor=cursor, node=Product.from_document(doc))
                for doc, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),
            _count=count,
        )


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo
    _count: strawberry.Private[Count]

    @strawberry.field(description="How many orders the whole listing holds, on every page.")
    async def total_count(self) -> int:
        return await self._count()

    @classmethod
    def from_page(cls, page: Page[OrderDocument], count: Count) -> OrderConnection:
        return cls(
            edges=[
                OrderEdge(cursor=cursor, node=Order.from_document(doc))
                for doc, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),
            _count=count,
        )


def page_sizes(
    info: Info, first: int | None, last: int | None, default: int
) -> tuple[int | None, int | None]:
    """(first, last) as the listing reads them.

    `first` defaults to `default` in the contract, so a request with `last` would always
    carry a `first` too: the default gives way to `last`, and only a `first` the request
    itself sets alongside `last` is refused.
    """
    if last is None:
        return (default if first is None else first), None
    if first is not None and _given(info, "first"):
        raise ApiError(
            "BAD_USER_INPUT", "pass first (to page forward) or last (to page backward), not both"
        )
    return None, last


def _given(info: Info, argument: str) -> bool:
    """Whether the request itself passed a non-null `argument` to the field resolving."""
    return any(
        isinstance(selected, SelectedField) and selected.arguments.get(argument) is not None
        for selected in info.selected_fields
    )
