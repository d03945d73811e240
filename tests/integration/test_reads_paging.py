"""Keyset paging over projected documents, and the write-store fallback's identical pages.

Data is made through the real API; a real worker projects it into this test's own
MongoDB database. The run's event log is shared by every test of the session, so
catalog-wide listings hold other tests' products too: assertions are about the
documents a test made, or about the order of the whole listing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from pymongo.asynchronous.collection import AsyncCollection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.settings import Settings
from reads import fallback
from reads.documents import INDEXES, POSITION
from reads.orders import NEWEST_FIRST, customer_orders
from reads.paging import MAX_PAGE, BadCursor, Ordering, Page, PageSizeError, decode_cursor
from reads.products import BY_NAME, LOW_STOCK_FIRST, list_products, low_stock
from reads.projection_state import STATE
from tests.conftest import Api, Customer
from tests.pipeline import Pipeline, isolated_pipeline
from tests.shop_api import create_product, place
from tests.support import CANCEL_ORDER, CREATE_PRODUCT, SHIP_ORDER, token_position

Doc = Any  # a projected document (a dict) or the fallback's (a TypedDict)
Fetch = Callable[[str | None], Awaitable[Page[Doc]]]


@pytest_asyncio.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    async with isolated_pipeline(settings) as pipeline:
        await pipeline.start_worker()
        yield pipeline


async def collection(pipeline: Pipeline, projection: str, logical: str) -> AsyncCollection[Doc]:
    """The physical collection the worker projects `logical` into (rebuilds rename them)."""
    state = await pipeline.db[STATE].find_one({"_id": projection})
    assert state is not None, f"{projection} never started"
    return pipeline.db[state["collections"][logical]]


async def settle(pipeline: Pipeline, *results: Doc) -> None:
    """Wait until every projection has what the mutations that returned `results` wrote."""
    await pipeline.wait_until_projected(max(token_position(r["consistencyToken"]) for r in results))


async def named_product(
    api: Api, admin_token: str, name: str, *, stock: int = 10, description: str = "", sku: str = ""
) -> Doc:
    """A createProduct success (product + consistencyToken) for a product called `name`."""
    product_input = {
        "sku": sku or f"SKU-{uuid.uuid4().hex[:12]}",
        "name": name,
        "description": description,
        "priceCents": 100,
        "stock": stock,
    }
    data = await api.client.data(CREATE_PRODUCT, {"input": product_input}, admin_token)
    result: Doc = data["createProduct"]
    assert result["__typename"] == "ProductSuccess", result
    return result


def new_tag() -> str:
    """A word no other product has (letters and digits only: one text-index token)."""
    return "tag" + uuid.uuid4().hex[:10]


async def walk(fetch: Fetch, between: Callable[[int], Awaitable[None]] | None = None) -> list[Doc]:
    """Every item of a listing, page by page; `between(page_number)` runs between pages."""
    items: list[Doc] = []
    after: str | None = None
    pages = 0
    while True:
        page = await fetch(after)
        pages += 1
        assert pages < 1000, "the walk does not end"
        assert len(page.cursors) == len(page.items)
        assert page.end_cursor == (page.cursors[-1] if page.items else None)
        items.extend(page.items)
        if not page.has_next:
            return items
        assert page.end_cursor is not None
        after = page.end_cursor
        if between is not None:
            await between(pages)


def ids(docs: list[Doc]) -> list[str]:
    return [doc["_id"] for doc in docs]


def assert_each_once_in_order(walked: list[Doc], expected: list[str]) -> None:
    walked_ids = ids(walked)
    assert len(walked_ids) == len(set(walked_ids)), "a document came twice"
    wanted = set(expected)
    assert [i for i in walked_ids if i in wanted] == expected


async def test_walking_a_customers_orders_while_new_orders_arrive(
    api: Api, admin_token: str, customer: Customer, pipeline: Pipeline
) -> None:
    mug = await create_product(api, admin_token, stock=100)
    placed = [await place(api, customer.token, [(mug["id"], 1)]) for _ in range(7)]
    await settle(pipeline, *placed)
    orders = await collection(pipeline, "orders", "orders")
    existing = [result["order"]["id"] for result in reversed(placed)]
    late: list[str] = []
    old: list[str] = []

    async def between(page_number: int) -> None:
        # A newer order lands before the cursor (it would shift an offset by one) ...
        newer = await place(api, customer.token, [(mug["id"], 1)])
        await settle(pipeline, newer)
        late.append(newer["order"]["id"])
        # ... and a document older than everything lands after it, still to come.
        template = await orders.find_one({"_id": existing[0]})
        assert template is not None
        doc = template | {
            "_id": str(uuid.uuid4()),
            "placed_at": datetime(2001, 1, page_number, tzinfo=UTC),
        }
        await orders.insert_one(doc)
        old.insert(0, doc["_id"])

    async def fetch(after: str | None) -> Page[Doc]:
        # An upper-case id names the same customer.
        return await customer_orders(orders, customer.id.upper(), first=3, after=after, status=None)

    walked = await walk(fetch, between)

    assert ids(walked) == existing + old
    assert not set(late) & set(ids(walked))
    assert len(late) == 2


async def test_orders_sharing_a_placing_time_page_by_id_without_a_gap(pipeline: Pipeline) -> None:
    """Ties on placed_at are broken by _id descending; made directly in MongoDB."""
    orders = pipeline.db["orders_ties"]
    await orders.create_indexes(INDEXES["orders"])
    customer_id = str(uuid.uuid4())
    moments = [datetime(2026, 5, 1, 10, 0, 0, 1000 * (i // 4), tzinfo=UTC) for i in range(12)]
    docs = [
        {
            "_id": str(uuid.uuid4()),
            "customer": {"id": customer_id},
            "status": "PLACED",
            "placed_at": m,
        }
        for m in moments
    ]
    await orders.insert_many(docs)
    expected = sorted(docs, key=lambda d: (d["placed_at"], d["_id"]), reverse=True)

    for first in (1, 2, 5, 12):

        async def fetch(after: str | None, first: int = first) -> Page[Doc]:
            return await customer_orders(orders, customer_id, first=first, after=after, status=None)

        assert ids(await walk(fetch)) == ids(expected)


async def test_walking_the_catalog_by_name_while_products_are_added(
    api: Api, admin_token: str, pipeline: Pipeline
) -> None:
    tag = new_tag()
    made = [await named_product(api, admin_token, f"{tag} {i:02d}") for i in range(0, 20, 2)]
    await settle(pipeline, *made)
    products = await collection(pipeline, "products", "products")
    existing = ids(await products.find({}).sort([("name", 1), ("_id", 1)]).to_list())
    mine = [result["product"]["id"] for result in made]
    added: list[str] = []

    async def between(page_number: int) -> None:
        if page_number > 3:
            return
        # One name before the walk's position, one after it, one at the very start.
        names = [f"{tag} {2 * page_number - 1:02d}", f"{tag} {21 - page_number:02d}", "  first"]
        results = [await named_product(api, admin_token, name) for name in names]
        await settle(pipeline, *results)
        added.extend(result["product"]["id"] for result in results)

    for search in (tag, None):

        async def fetch(after: str | None, search: str | None = search) -> Page[Doc]:
            return await list_products(products, first=3, after=after, search=search, in_stock=None)

        walked = await walk(fetch, between)

        assert_each_once_in_order(walked, mine if search else existing)
        keys = [(doc["name"], doc["_id"]) for doc in walked]
        assert keys == sorted(keys)
        if search:
            # Names added behind the walk's position stay behind; those ahead of it come.
            numbers = [doc["name"].removeprefix(f"{tag} ") for doc in walked]
            assert numbers == [f"{i:02d}" for i in range(0, 20, 2)] + ["18", "19", "20"]
    assert len(added) == 18


async def test_walking_low_stock_while_products_are_added(
    api: Api, admin_token: str, pipeline: Pipeline
) -> None:
    tag = new_tag()
    made = [await named_product(api, admin_token, tag, stock=s) for s in (0, 0, 1, 1, 2, 2, 3)]
    await settle(pipeline, *made)
    products = await collection(pipeline, "products", "products")
    existing = ids(
        await products.find({"stock": {"$lt": 3}}).sort([("stock", 1), ("_id", 1)]).to_list()
    )
    assert {r["product"]["id"] for r in made[:6]} <= set(existing)
    assert made[6]["product"]["id"] not in existing

    async def between(page_number: int) -> None:
        if page_number <= 3:
            results = [await named_product(api, admin_token, tag, stock=s) for s in (0, 2)]
            await settle(pipeline, *results)

    async def fetch(after: str | None) -> Page[Doc]:
        return await low_stock(products, below=3, first=2, after=after)

    walked = await walk(fetch, between)

    assert_each_once_in_order(walked, existing)
    keys = [(doc["stock"], doc["_id"]) for doc in walked]
    assert keys == sorted(keys)
    assert all(doc["stock"] < 3 for doc in walked)


async def test_the_status_filter_pages_one_status_only(
    api: Api, admin_token: str, customer: Customer, pipeline: Pipeline
) -> None:
    mug = await create_product(api, admin_token, stock=100)
    placed = [await place(api, customer.token, [(mug["id"], 1)]) for _ in range(5)]
    order_ids = [result["order"]["id"] for result in placed]
    cancel = await api.client.data(
        CANCEL_ORDER, {"input": {"orderId": order_ids[1]}}, customer.token
    )
    ship = await api.client.data(SHIP_ORDER, {"input": {"orderId": order_ids[3]}}, admin_token)
    await settle(pipeline, cancel["cancelOrder"], ship["shipOrder"])
    orders = await collection(pipeline, "orders", "orders")

    async def walk_status(status: str | None) -> list[str]:
        async def fetch(after: str | None) -> Page[Doc]:
            return await customer_orders(orders, customer.id, first=1, after=after, status=status)

        return ids(await walk(fetch))

    assert await walk_status("PLACED") == [order_ids[4], order_ids[2], order_ids[0]]
    assert await walk_status("CANCELLED") == [order_ids[1]]
    assert await walk_status("SHIPPED") == [order_ids[3]]
    assert await walk_status(None) == order_ids[::-1]
    assert await walk_status("UNKNOWN") == []
    # A cursor of one status listing continues another: the order is the same.
    page = await customer_orders(orders, customer.id, first=1, after=None, status=None)
    rest = await customer_orders(
        orders, customer.id, first=10, after=page.end_cursor, status="PLACED"
    )
    assert ids(rest.items) == [order_ids[2], order_ids[0]]


async def test_search_and_the_in_stock_filter(
    api: Api, admin_token: str, pipeline: Pipeline
) -> None:
    tag = new_tag()
    by_name = await named_product(api, admin_token, f"Kettle {tag}", stock=0)
    by_description = await named_product(
        api, admin_token, "Teapot", description=f"Goes well with a {tag} kettle"
    )
    by_sku = await named_product(api, admin_token, "Cup", sku=f"{tag}-CUP")
    other = await named_product(api, admin_token, f"Kettle {tag}x")
    await settle(pipeline, by_name, by_description, by_sku, other)
    products = await collection(pipeline, "products", "products")

    async def listed(search: str | None, in_stock: bool | None) -> list[str]:
        page = await list_products(
            products, first=MAX_PAGE, after=None, search=search, in_stock=in_stock
        )
        return ids(page.items)

    by_name_id, by_description_id, by_sku_id, other_id = (
        r["product"]["id"] for r in (by_name, by_description, by_sku, other)
    )
    # Ordered by name ("Cup" < "Kettle ..." < "Teapot"), whatever the text score.
    assert await listed(tag, None) == [by_sku_id, by_name_id, by_description_id]
    assert await listed(tag.upper(), None) == [by_sku_id, by_name_id, by_description_id]
    assert await listed(tag, True) == [by_sku_id, by_description_id]
    assert await listed(tag, False) == [by_name_id]
    assert other_id not in await listed(tag, None)
    out_of_stock = await listed(None, False)
    assert by_name_id in out_of_stock
    assert by_sku_id not in out_of_stock
    # A blank search is no search.
    page = await list_products(products, first=1, after=None, search="  ", in_stock=None)
    assert len(page.items) == 1

    # Paging a search one by one gives the same documents.
    async def fetch(after: str | None) -> Page[Doc]:
        return await list_products(products, first=1, after=after, search=tag, in_stock=True)

    assert ids(await walk(fetch)) == [by_sku_id, by_description_id]


async def test_page_sizes_and_cursors_are_checked(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine, pipeline: Pipeline
) -> None:
    mug = await create_product(api, admin_token, stock=5)
    placed = await place(api, customer.token, [(mug["id"], 1)])
    await settle(pipeline, placed)
    orders = await collection(pipeline, "orders", "orders")
    products = await collection(pipeline, "products", "products")

    async def orders_page(first: int, after: str | None) -> Page[Doc]:
        return await customer_orders(orders, customer.id, first=first, after=after, status=None)

    async def fallback_page(first: int, after: str | None) -> Page[Doc]:
        async with AsyncSession(engine) as session:
            return await fallback.customer_orders(
                session, customer.id, first=first, after=after, status=None
            )

    async def products_page(first: int, after: str | None) -> Page[Doc]:
        return await list_products(products, first=first, after=after, search=None, in_stock=None)

    async def low_stock_page(first: int, after: str | None) -> Page[Doc]:
        return await low_stock(products, below=1000, first=first, after=after)

    listings = [orders_page, fallback_page, products_page, low_stock_page]
    for listing in listings:
        for first in (0, -1, MAX_PAGE + 1):
            with pytest.raises(PageSizeError, match="between 1 and 100"):
                await listing(first, None)
        for cursor in ("", "garbage!", "e30", "bm90IGpzb24"):
            with pytest.raises(BadCursor):
                await listing(1, cursor)
        assert (await listing(MAX_PAGE, None)).items
    cursors = {
        orders_page: (await orders_page(1, None)).end_cursor,
        products_page: (await products_page(1, None)).end_cursor,
        low_stock_page: (await low_stock_page(1, None)).end_cursor,
    }
    cursors[fallback_page] = cursors[orders_page]
    group = {orders_page: "orders", fallback_page: "orders", products_page: "by name"}
    group[low_stock_page] = "low stock"
    for listing in listings:
        for issuer, issued in cursors.items():
            assert issued is not None
            if group[issuer] == group[listing]:
                await listing(1, issued)
            else:
                with pytest.raises(BadCursor, match="another listing"):
                    await listing(1, issued)
    # A malformed customer id has no orders, but its page size and cursor are still checked.
    empty = await customer_orders(orders, "not-a-uuid", first=5, after=None, status=None)
    assert (empty.items, empty.has_next, empty.end_cursor) == ([], False, None)
    async with AsyncSession(engine) as session:
        written = await fallback.customer_orders(
            session, "not-a-uuid", first=5, after=None, status=None
        )
    assert (written.items, written.has_next, written.end_cursor) == ([], False, None)
    with pytest.raises(BadCursor):
        await customer_orders(orders, "not-a-uuid", first=5, after="garbage!", status=None)


async def test_the_fallback_pages_equal_the_projections(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine, pipeline: Pipeline
) -> None:
    mug = await create_product(api, admin_token, stock=100, price=700)
    tea = await create_product(api, admin_token, stock=100, price=450)
    placed = [
        await place(
            api, customer.token, [(mug["id"], 1 + i % 3)] + ([(tea["id"], 2)] if i % 2 else [])
        )
        for i in range(8)
    ]
    order_ids = [result["order"]["id"] for result in placed]
    changes = [
        (await api.client.data(CANCEL_ORDER, {"input": {"orderId": order_ids[i]}}, customer.token))[
            "cancelOrder"
        ]
        for i in (1, 6)
    ] + [
        (await api.client.data(SHIP_ORDER, {"input": {"orderId": order_ids[4]}}, admin_token))[
            "shipOrder"
        ]
    ]
    await settle(pipeline, *changes)
    orders = await collection(pipeline, "orders", "orders")

    for status in (None, "PLACED", "CANCELLED", "SHIPPED"):
        for first in (1, 2, 3, 8, MAX_PAGE):
            after: str | None = None
            pages = 0
            while True:
                projected = await customer_orders(
                    orders, customer.id, first=first, after=after, status=status
                )
                async with AsyncSession(engine) as session:
                    written = await fallback.customer_orders(
                        session, customer.id.upper(), first=first, after=after, status=status
                    )
                stripped = [
                    {k: v for k, v in doc.items() if k != POSITION} for doc in projected.items
                ]
                assert written.items == stripped, (status, first, pages)
                assert all(POSITION in doc for doc in projected.items)
                assert (written.cursors, written.end_cursor, written.has_next) == (
                    projected.cursors,
                    projected.end_cursor,
                    projected.has_next,
                ), (status, first, pages)
                pages += 1
                if not projected.has_next:
                    break
                after = projected.end_cursor
            wanted = {None: 8, "PLACED": 5, "CANCELLED": 2, "SHIPPED": 1}[status]
            assert pages == max(1, -(-wanted // first)), (status, first)


async def test_postgresql_orders_uuids_as_their_canonical_strings(engine: AsyncEngine) -> None:
    """What makes the fallback's (placed_at, id) keyset agree with MongoDB's string _id."""
    values = [str(uuid.uuid4()) for _ in range(200)] + [
        "00000000-0000-4000-8000-00000000000a",
        "00000000-0000-4000-8000-000000000009",
        "ffffffff-0000-4000-8000-000000000000",
        "a0000000-0000-4000-8000-000000000000",
        "90000000-0000-4000-8000-000000000000",
    ]
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT v FROM unnest(CAST(:values AS uuid[])) AS v ORDER BY v"),
            {"values": values},
        )
        assert [str(row[0]) for row in rows] == sorted(values)


async def test_the_fallback_uses_the_orders_index_for_its_keyset(engine: AsyncEngine) -> None:
    moment = datetime.now(UTC) - timedelta(days=1)
    async with engine.connect() as conn:
        # Plain index scans only: with few rows the planner may prefer a bitmap scan and a
        # sort, which says nothing about whether the index can serve the keyset in order.
        await conn.execute(text("SET enable_seqscan = off"))
        await conn.execute(text("SET enable_bitmapscan = off"))
        plan = "\n".join(
            row[0]
            for row in await conn.execute(
                text(
                    "EXPLAIN SELECT id FROM orders WHERE customer_id = :c AND (placed_at, id) < (:p, :i)"
                    " ORDER BY placed_at DESC, id DESC LIMIT 4"
                ),
                {"c": uuid.uuid4(), "p": moment, "i": uuid.uuid4()},
            )
        )
    assert "ix_orders_customer_placed" in plan, plan
    assert "Sort" not in plan, plan
    assert "ROW(placed_at, id) < ROW(" in plan, plan


def plan_stages(plan: Doc) -> list[Doc]:
    """Every stage of a winning plan, outermost first."""
    found = [plan]
    for key in ("inputStage", "queryPlan"):
        if key in plan:
            found += plan_stages(plan[key])
    for child in plan.get("inputStages", []):
        found += plan_stages(child)
    return found


async def test_the_next_pages_queries_walk_an_index_without_sorting(
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
    by_customer = ("customer_newest_first",)
    # Either index serves a status filter in order; the planner picks by the data.
    by_status = ("customer_newest_first", "customer_status_newest_first")
    by_status_query = {"customer.id": customer.id, "status": "PLACED"}
    cases: list[tuple[AsyncCollection[Doc], Doc, Ordering, str | None, tuple[str, ...]]] = [
        (orders, {"customer.id": customer.id}, NEWEST_FIRST, order_cursor, by_customer),
        (orders, by_status_query, NEWEST_FIRST, order_cursor, by_status),
        (products, {}, BY_NAME, name_cursor, ("catalog_by_name",)),
        (products, {"in_stock": True}, BY_NAME, name_cursor, ("catalog_by_name",)),
        (products, {"stock": {"$lt": 1000}}, LOW_STOCK_FIRST, stock_cursor, ("low_stock",)),
    ]
    for coll, where, ordering, cursor, indexes in cases:
        assert cursor is not None
        keyset = ordering.after(decode_cursor(cursor, ordering))
        query = {"$and": [where, keyset]} if where.keys() & keyset.keys() else where | keyset
        explained = await coll.find(query).sort(ordering.sort()).limit(4).explain()
        stages = plan_stages(explained["queryPlanner"]["winningPlan"])
        names = [stage.get("stage") for stage in stages]
        assert "SORT" not in names, (indexes, names)
        used = {stage.get("indexName") for stage in stages} - {None}
        assert used, stages
        assert used <= set(indexes), (indexes, stages)
