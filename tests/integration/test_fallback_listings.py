"""The write store's listings and dashboard equal the projection's, page for page.

They answer read-your-writes for a client whose token is ahead of the projection, so
their order, cursors and documents must be exactly the projection's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.settings import Settings
from reads import fallback
from reads.documents import POSITION
from reads.paging import Page
from reads.products import list_products, low_stock
from reads.projection_state import STATE
from reads.sales import dashboard
from tests.conftest import Api, Customer
from tests.pipeline import Pipeline, isolated_pipeline
from tests.shop_api import place
from tests.support import CANCEL_ORDER, CREATE_PRODUCT, token_position, unique

Doc = Any  # a projected document (a dict) or the fallback's (a TypedDict)
Fetch = Callable[[str | None], Awaitable[Page[Doc]]]


@pytest_asyncio.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    async with isolated_pipeline(settings) as pipeline:
        await pipeline.start_worker()
        yield pipeline


def _stripped(page: Page[Doc]) -> list[Doc]:
    return [{k: v for k, v in doc.items() if k != POSITION} for doc in page.items]


async def _same_walk(projected: Fetch, written: Fetch) -> int:
    after: str | None = None
    pages = 0
    while True:
        mine, theirs = await projected(after), await written(after)
        assert theirs.items == _stripped(mine), pages
        assert (theirs.cursors, theirs.end_cursor, theirs.has_next) == (
            mine.cursors,
            mine.end_cursor,
            mine.has_next,
        ), pages
        pages += 1
        if not mine.has_next:
            return pages
        after = mine.end_cursor


async def test_catalog_low_stock_and_dashboard_match_the_projection(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine, pipeline: Pipeline
) -> None:
    tag = unique("cat")
    # Byte-wise name order differs from a locale's: both sides must agree on it.
    results = []
    for name, stock in (("apple", 3), ("Banana", 0), ("banana", 9), ("Äpfel", 1), ("apple", 2)):
        data = await api.client.data(
            CREATE_PRODUCT,
            {
                "input": {
                    "sku": unique("FB"),
                    "name": f"{name} {tag}",
                    "priceCents": 250,
                    "stock": stock,
                }
            },
            admin_token,
        )
        results.append(data["createProduct"])
    placed = await place(api, customer.token, [(results[2]["product"]["id"], 4)])
    cancelled = await place(api, customer.token, [(results[0]["product"]["id"], 1)])
    undo = await api.client.data(
        CANCEL_ORDER, {"input": {"orderId": cancelled["order"]["id"]}}, customer.token
    )
    last = token_position(undo["cancelOrder"]["consistencyToken"])
    await pipeline.wait_until_projected(max(last, token_position(placed["consistencyToken"])))
    state = await pipeline.db[STATE].find_one({"_id": "products"})
    assert state is not None
    products = pipeline.db[state["collections"]["products"]]

    def catalog(in_stock: bool | None) -> tuple[Fetch, Fetch]:
        async def projected(after: str | None) -> Page[Doc]:
            return await list_products(
                products, first=7, after=after, search=None, in_stock=in_stock
            )

        async def written(after: str | None) -> Page[Doc]:
            async with AsyncSession(engine) as session:
                return await fallback.list_products(
                    session, first=7, after=after, search=None, in_stock=in_stock
                )

        return projected, written

    def running_low(below: int) -> tuple[Fetch, Fetch]:
        async def projected(after: str | None) -> Page[Doc]:
            return await low_stock(products, below=below, first=3, after=after)

        async def written(after: str | None) -> Page[Doc]:
            async with AsyncSession(engine) as session:
                return await fallback.low_stock(session, below=below, first=3, after=after)

        return projected, written

    for in_stock in (None, True, False):
        await _same_walk(*catalog(in_stock))
    for below in (1, 5, 10):
        await _same_walk(*running_low(below))
    async with AsyncSession(engine) as session:
        searched = await fallback.list_products(
            session, first=100, after=None, search=tag, in_stock=None
        )
    assert [doc["name"] for doc in searched.items] == [
        f"{n} {tag}" for n in ("Banana", "apple", "apple", "banana", "Äpfel")
    ]

    sales = await pipeline.db[STATE].find_one({"_id": "sales"})
    assert sales is not None
    names = sales["collections"]
    projected = await dashboard(
        pipeline.db[names["sales_totals"]],
        pipeline.db[names["sales_daily"]],
        pipeline.db[names["sales_products"]],
        days=30,
        limit=10,
    )
    async with AsyncSession(engine) as session:
        written = await fallback.dashboard(session, days=30, limit=10)

    def strip(doc: Doc) -> Doc:
        return {
            k: [_drop(x) for x in v] if isinstance(v, list) else v
            for k, v in doc.items()
            if k != POSITION
        }

    assert strip(written) == strip(projected)


def _drop(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k != POSITION}
