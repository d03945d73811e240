"""Paging backward (`last`/`before`) over MongoDB and the write store: the same pages.

A backward walk from a listing's end must meet every document a forward walk meets, in
the same order, with the same cursors and flags, on the projection and on the
write-store fallback alike; counts agree with the walks; and the backward queries walk
the forward indexes in reverse, with no sort.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.settings import Settings
from reads import fallback
from reads.documents import POSITION
from reads.orders import NEWEST_FIRST, count_customer_orders, customer_orders
from reads.paging import Page, page_request, windowed
from reads.products import (
    BY_NAME,
    LOW_STOCK_FIRST,
    catalog_filter,
    count_low_stock,
    count_products,
    list_products,
    low_stock,
)
from tests.conftest import Api, Customer
from tests.integration.test_reads_paging import (
    collection,
    named_product,
    new_tag,
    plan_stages,
    settle,
)
from tests.pipeline import Pipeline, isolated_pipeline
from tests.shop_api import create_product, place
from tests.support import CANCEL_ORDER

Doc = Any  # a projected document (a dict) or the fallback's (a TypedDict)
# A listing called with first/after/last/before, on one store.
Listing = Callable[..., Awaitable[Page[Doc]]]


@pytest_asyncio.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    async with isolated_pipeline(settings) as pipeline:
        await pipeline.start_worker()
        yield pipeline


async def forward_walk(listing: Listing, size: int) -> list[Page[Doc]]:
    pages: list[Page[Doc]] = []
    after: str | None = None
    while len(pages) < 200:
        page = await listing(first=size, after=after, last=None, before=None)
        pages.append(page)
        if not page.has_next:
            return pages
        after = page.end_cursor
    raise AssertionError("the forward walk does not end")


async def backward_walk(listing: Listing, size: int) -> list[Page[Doc]]:
    """The pages from the listing's end to its start, in the order they were fetched."""
    pages: list[Page[Doc]] = []
    before: str | None = None
    while len(pages) < 200:
        page = await listing(first=None, after=None, last=size, before=before)
        pages.append(page)
        if not page.has_previous:
            return pages
        before = page.start_cursor
    raise AssertionError("the backward walk does not end")


def items(pages: list[Page[Doc]]) -> list[str]:
    return [doc["_id"] for page in pages for doc in page.items]


def shape(page: Page[Doc]) -> tuple[Any, ...]:
    """All a page tells a client, less the projection's own `position`."""
    docs = [{k: v for k, v in doc.items() if k != POSITION} for doc in page.items]
    return docs, page.cursors, page.start_cursor, page.end_cursor, page.has_next, page.has_previous


async def check_both_ways(projected: Listing, written: Listing, size: int, expected: int) -> None:
    forward = await forward_walk(projected, size)
    backward = await backward_walk(projected, size)

    walked = items(forward)
    assert len(walked) == len(set(walked)) == expected
    assert items(list(reversed(backward))) == walked
    assert [p.has_previous for p in forward] == [False] + [True] * (len(forward) - 1)
    assert [p.has_next for p in backward] == [False] + [True] * (len(backward) - 1)
    assert all(len(p.items) == size for p in backward[:-1])
    # The write store answers every one of those requests with the very same page.
    assert [shape(p) for p in await forward_walk(written, size)] == [shape(p) for p in forward]
    assert [shape(p) for p in await backward_walk(written, size)] == [shape(p) for p in backward]
    # Round trip: back from a forward page's start is the forward page before it.
    for earlier, later in itertools.pairwise(forward):
        for listing in (projected, written):
            back = await listing(first=None, after=None, last=size, before=later.start_cursor)
            assert shape(back)[:4] == shape(earlier)[:4]
            assert back.has_next
            assert back.has_previous == earlier.has_previous
    # A window between two cursors, taken from either end.
    if len(forward) >= 3:
        low, high = forward[0].end_cursor, forward[2].start_cursor
        for listing in (projected, written):
            middle = await listing(first=size, after=low, last=None, before=high)
            tail = await listing(first=None, after=low, last=size, before=high)
            assert [d["_id"] for d in middle.items] == [d["_id"] for d in forward[1].items]
            assert [d["_id"] for d in tail.items] == [d["_id"] for d in forward[1].items]
            assert (middle.has_previous, middle.has_next) == (True, False)
            assert (tail.has_previous, tail.has_next) == (False, True)


async def test_every_listing_pages_backward_as_it_pages_forward_on_both_stores(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine, pipeline: Pipeline
) -> None:
    tag = new_tag()
    stocks = [0, 3, 1, 0, 7, 2, 5, 1, 4, 0, 6]
    made = [
        await named_product(api, admin_token, f"{tag} {name}", stock=stock)
        for name, stock in zip("kbhadjfcgei", stocks, strict=True)
    ]
    mug = await create_product(api, admin_token, stock=100)
    placed = [await place(api, customer.token, [(mug["id"], 1 + i % 2)]) for i in range(8)]
    cancels = [
        (
            await api.client.data(
                CANCEL_ORDER, {"input": {"orderId": p["order"]["id"]}}, customer.token
            )
        )["cancelOrder"]
        for p in placed[2:4]
    ]
    await settle(pipeline, *made, *placed, *cancels)
    orders = await collection(pipeline, "orders", "orders")
    products = await collection(pipeline, "products", "products")

    def on_both(
        projection: Callable[..., Awaitable[Page[Doc]]],
        store: Callable[..., Awaitable[Page[Doc]]],
        **fixed: Any,
    ) -> tuple[Listing, Listing]:
        async def projected(**paging: Any) -> Page[Doc]:
            return await projection(**fixed, **paging)

        async def written(**paging: Any) -> Page[Doc]:
            async with AsyncSession(engine) as session:
                return await store(session, **fixed, **paging)

        return projected, written

    def my_orders(status: str | None) -> tuple[Listing, Listing]:
        async def projected(**paging: Any) -> Page[Doc]:
            return await customer_orders(orders, customer.id, status=status, **paging)

        async def written(**paging: Any) -> Page[Doc]:
            async with AsyncSession(engine) as session:
                return await fallback.customer_orders(session, customer.id, status=status, **paging)

        return projected, written

    for size in (1, 3, 4):
        await check_both_ways(*my_orders(None), size, 8)
        await check_both_ways(*my_orders("PLACED"), size, 6)
        await check_both_ways(*my_orders("CANCELLED"), size, 2)
        for in_stock, expected in ((None, 11), (True, 8), (False, 3)):
            catalog = on_both(
                lambda **kw: list_products(products, **kw),
                fallback.list_products,
                search=tag,
                in_stock=in_stock,
            )
            await check_both_ways(*catalog, size, expected)
    # Catalog-wide listings hold other tests' products too: both stores hold the same.
    below = 3
    everything_low = await products.count_documents({"stock": {"$lt": below}})
    running_low = on_both(lambda **kw: low_stock(products, **kw), fallback.low_stock, below=below)
    await check_both_ways(*running_low, 5, everything_low)
    whole_catalog = await products.count_documents({})
    catalog = on_both(
        lambda **kw: list_products(products, **kw),
        fallback.list_products,
        search=None,
        in_stock=None,
    )
    await check_both_ways(*catalog, 50, whole_catalog)

    # The counts: the walks' lengths, on either store.
    async with AsyncSession(engine) as session:
        for status, expected in ((None, 8), ("PLACED", 6), ("SHIPPED", 0)):
            assert await count_customer_orders(orders, customer.id, status=status) == expected
            assert (
                await fallback.count_customer_orders(session, customer.id, status=status)
                == expected
            )
        assert await count_customer_orders(orders, "not-a-uuid", status=None) == 0
        assert await fallback.count_customer_orders(session, "not-a-uuid", status=None) == 0
        for in_stock, expected in ((None, 11), (True, 8), (False, 3)):
            assert await count_products(products, search=tag, in_stock=in_stock) == expected
            assert await fallback.count_products(session, search=tag, in_stock=in_stock) == expected
        assert await count_products(products, search=None, in_stock=None) == whole_catalog
        assert await fallback.count_products(session, search=None, in_stock=None) == whole_catalog
        assert await count_low_stock(products, below=below) == everything_low
        assert await fallback.count_low_stock(session, below=below) == everything_low


async def test_backward_pages_walk_the_forward_indexes_in_reverse_without_sorting(
    api: Api, admin_token: str, customer: Customer, pipeline: Pipeline
) -> None:
    mug = await create_product(api, admin_token, stock=5)
    placed = [await place(api, customer.token, [(mug["id"], 1)]) for _ in range(2)]
    await settle(pipeline, *placed)
    orders = await collection(pipeline, "orders", "orders")
    products = await collection(pipeline, "products", "products")
    order_cursor = (
        await customer_orders(orders, customer.id, first=1, after=None, status=None)
    ).end_cursor
    name_cursor = (
        await list_products(products, first=1, after=None, search=None, in_stock=None)
    ).end_cursor
    stock_cursor = (await low_stock(products, below=1000, first=1, after=None)).end_cursor
    cases = [
        (
            orders,
            {"customer.id": customer.id},
            NEWEST_FIRST,
            order_cursor,
            {"customer_newest_first"},
        ),
        (products, catalog_filter(None, None), BY_NAME, name_cursor, {"catalog_by_name"}),
        (products, {"stock": {"$lt": 1000}}, LOW_STOCK_FIRST, stock_cursor, {"low_stock"}),
    ]
    for coll, where, ordering, cursor, indexes in cases:
        assert cursor is not None
        for before, after in ((cursor, None), (None, cursor), (cursor, cursor)):
            request = page_request(ordering, first=None, after=after, last=4, before=before)
            query = windowed(where, ordering, request)
            explained = await coll.find(query).sort(ordering.reversed().sort()).limit(5).explain()
            stages = plan_stages(explained["queryPlanner"]["winningPlan"])
            assert "SORT" not in [stage.get("stage") for stage in stages], stages
            used = {stage.get("indexName") for stage in stages} - {None}
            assert used, stages
            assert used <= indexes, stages
            assert any(stage.get("direction") == "backward" for stage in stages), stages


async def test_the_fallback_walks_the_orders_index_backward_for_last(engine: AsyncEngine) -> None:
    moment = datetime.now(UTC) - timedelta(days=1)
    async with engine.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))
        await conn.execute(text("SET enable_bitmapscan = off"))
        plan = "\n".join(
            row[0]
            for row in await conn.execute(
                text(
                    "EXPLAIN SELECT id FROM orders WHERE customer_id = :c AND (placed_at, id) > (:p, :i)"
                    " ORDER BY placed_at ASC, id ASC LIMIT 4"
                ),
                {"c": uuid.uuid4(), "p": moment, "i": uuid.uuid4()},
            )
        )
    assert "ix_orders_customer_placed" in plan, plan
    assert "Sort" not in plan, plan
    assert "Backward" in plan, plan
