"""Relay cursor connections over keyset pages."""

from __future__ import annotations

import strawberry

from reads.paging import Page
from schema.orders import Order
from schema.products import Product


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ProductEdge:
    cursor: str
    node: Product


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[dict[str, object]]) -> ProductConnection:
        return cls(
            edges=[
                ProductEdge(cursor=cursor, node=Product.from_document(doc))
                for doc, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
        )


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[dict[str, object]]) -> OrderConnection:
        return cls(
            edges=[
                OrderEdge(cursor=cursor, node=Order.from_document(doc))
                for doc, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
        )
