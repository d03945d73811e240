"""The non-paged reads: the sales dashboard, lookups by id and `node(id:)`.

The dashboard's known-orders test feeds made-up order events through the real sales
projector into this test's own MongoDB database (the run's shared event log holds every
other test's orders too); the rest read what a real worker projected from the API.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.settings import Settings
from reads import fallback
from reads.customers import customer_by_id
from reads.documents import POSITION, SALES_DAILY, SALES_PRODUCTS, SALES_TOTALS
from reads.nodes import (
    FoundCustomer,
    FoundNode,
    FoundOrder,
    FoundProduct,
    find_node,
    written_node,
)
from reads.orders import order_by_id
from reads.products import product_by_id
from reads.projection_state import STATE
from reads.sales import DashboardArgumentError, dashboard
from tests.conftest import Api, Customer
from tests.pipeline import Pipeline, isolated_pipeline
from tests.shop_api import create_product, place
from tests.support import CANCEL_ORDER, project, token_position
from workers.projection import StoredEvent
from workers.projectors.sales import PROJECTOR as SALES
from writes.events import (
    DomainEvent,
    OrderCancelled,
    OrderCustomerData,
    OrderLineData,
    OrderPlaced,
    RestockedLine,
)

Doc = dict[str, Any]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest_asyncio.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    async with isolated_pipeline(settings) as pipeline:
        yield pipeline


def _without_position(docs: Sequence[Mapping[str, Any]]) -> list[Doc]:
    return [{k: v for k, v in doc.items() if k != POSITION} for doc in docs]


class Shop:
    """Made-up order events for the sales projector, with positions in order."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.customer = OrderCustomerData(str(uuid.uuid4()), "Cara", "cara@example.com")
        self.products = {name: str(uuid.uuid4()) for name in ("mug", "tea", "pot", "cup")}
        self.placed: dict[str, OrderPlaced] = {}

    def place(self, order: str, at: str, lines: list[tuple[str, int, int]]) -> None:
        line_data = tuple(
            OrderLineData(self.products[name], f"SKU-{name}", name.title(), price, qty, price * qty)
            for name, qty, price in lines
        )
        event = OrderPlaced(
            order_id=order,
            customer=self.customer,
            lines=line_data,
            item_count=sum(line.quantity for line in line_data),
            total_cents=sum(line.line_total_cents for line in line_data),
            placed_at=at,
        )
        self.placed[order] = event
        self._append(order, event)

    def cancel(self, order: str, at: str) -> None:
        placed = self.placed[order]
        event = OrderCancelled(
            order_id=order,
            customer_id=self.customer.id,
            lines=tuple(
                RestockedLine(line.product_id, line.quantity, line.line_total_cents)
                for line in placed.lines
            ),
            total_cents=placed.total_cents,
            placed_at=placed.placed_at,
            cancelled_at=at,
        )
        self._append(order, event)

    def _append(self, order: str, event: DomainEvent) -> None:
        self.events.append(
            StoredEvent(
                position=len(self.events) + 1,
                stream_type="order",
                stream_id=order,
                stream_version=1,
                event=event,
                recorded_at=datetime.now(UTC),
            )
        )


async def test_the_dashboard_of_a_known_set_of_orders(pipeline: Pipeline) -> None:
    shop = Shop()
    orders = [str(uuid.uuid4()) for _ in range(5)]
    shop.place(orders[0], "2026-01-10T09:00:00.000+00:00", [("mug", 2, 500), ("tea", 1, 300)])
    shop.place(orders[1], "2026-01-11T10:00:00.000+00:00", [("tea", 5, 300)])
    # Placed late on the 11th in New York: the 12th in UTC, the bucket it counts in.
    shop.place(orders[2], "2026-01-11T22:30:00.000-05:00", [("pot", 2, 1000)])
    shop.cancel(orders[2], "2026-01-12T08:00:00.000+00:00")
    shop.place(orders[3], "2026-01-13T12:00:00.250+00:00", [("mug", 4, 500), ("pot", 1, 1000)])
    shop.place(orders[4], "2026-01-13T13:00:00.000+00:00", [("cup", 1, 250)])
    shop.cancel(orders[4], "2026-01-14T07:45:30.500+00:00")
    collections = {name: f"{name}_known" for name in (SALES_TOTALS, SALES_DAILY, SALES_PRODUCTS)}
    client: AsyncMongoClient[Doc] = pipeline.mongo
    await project(client, pipeline.db, collections, SALES, shop.events)
    handles = [
        pipeline.db[collections[name]] for name in (SALES_TOTALS, SALES_DAILY, SALES_PRODUCTS)
    ]

    board = await dashboard(*handles, days=30, limit=10)

    assert board["revenue_cents"] == 1300 + 1500 + 3000
    assert (board["order_count"], board["cancelled_count"]) == (3, 2)
    assert board["average_order_cents"] == 5800 // 3
    assert board["updated_at"] == datetime(2026, 1, 14, 7, 45, 30, 500000, tzinfo=UTC)
    assert [(d["date"], d["revenue_cents"], d["order_count"]) for d in board["daily"]] == [
        ("2026-01-13", 3000, 1),
        ("2026-01-12", 0, 0),
        ("2026-01-11", 1500, 1),
        ("2026-01-10", 1300, 1),
    ]
    top = [
        (p["product_id"], p["name"], p["units_sold"], p["revenue_cents"])
        for p in board["top_products"]
    ]
    ids = shop.products
    # mug and tea both sold 6: more revenue first. The cup's only order was cancelled.
    assert top == [
        (ids["mug"], "Mug", 6, 3000),
        (ids["tea"], "Tea", 6, 1800),
        (ids["pot"], "Pot", 1, 1000),
    ]

    newest_two = await dashboard(*handles, days=2, limit=1)
    assert [d["date"] for d in newest_two["daily"]] == ["2026-01-13", "2026-01-12"]
    assert [p["product_id"] for p in newest_two["top_products"]] == [ids["mug"]]


async def test_the_dashboard_before_any_order(pipeline: Pipeline) -> None:
    handles = [pipeline.db[f"{name}_empty"] for name in (SALES_TOTALS, SALES_DAILY, SALES_PRODUCTS)]

    board = await dashboard(*handles, days=30, limit=10)

    assert board == {
        "revenue_cents": 0,
        "order_count": 0,
        "cancelled_count": 0,
        "average_order_cents": 0,
        "updated_at": None,
        "daily": [],
        "top_products": [],
    }


@pytest.mark.parametrize(
    ("days", "limit", "message"),
    [
        (0, 10, "days must be between 1 and 366"),
        (367, 10, "days must be between 1 and 366"),
        (30, 0, "limit must be between 1 and 100"),
        (30, 101, "limit must be between 1 and 100"),
    ],
)
async def test_dashboard_arguments_out_of_range_are_refused(
    pipeline: Pipeline, days: int, limit: int, message: str
) -> None:
    handles = [pipeline.db[name] for name in (SALES_TOTALS, SALES_DAILY, SALES_PRODUCTS)]
    with pytest.raises(DashboardArgumentError, match=message):
        await dashboard(*handles, days=days, limit=limit)
    assert issubclass(DashboardArgumentError, ValueError)


async def _collections(pipeline: Pipeline, projection: str) -> dict[str, str]:
    state = await pipeline.db[STATE].find_one({"_id": projection})
    assert state is not None, f"{projection} never started"
    names: dict[str, str] = state["collections"]
    return names


async def test_the_projected_dashboard_agrees_with_the_write_store(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.start_worker()
    mug = await create_product(api, admin_token, stock=50, price=700)
    kept = await place(api, customer.token, [(mug["id"], 3)])
    dropped = await place(api, customer.token, [(mug["id"], 2)])
    cancel = await api.client.data(
        CANCEL_ORDER, {"input": {"orderId": dropped["order"]["id"]}}, customer.token
    )
    await pipeline.wait_until_projected(token_position(cancel["cancelOrder"]["consistencyToken"]))
    names = await _collections(pipeline, "sales")
    handles = [pipeline.db[names[name]] for name in (SALES_TOTALS, SALES_DAILY, SALES_PRODUCTS)]

    board = await dashboard(*handles, days=366, limit=100)

    async with AsyncSession(engine) as session:
        totals = await fallback.sales_totals_document(session)
        daily = await fallback.sales_daily_documents(session)
        sold = await fallback.sales_product_documents(session)
    assert totals is not None
    assert (
        board["revenue_cents"],
        board["order_count"],
        board["cancelled_count"],
        board["updated_at"],
    ) == (
        totals["revenue_cents"],
        totals["order_count"],
        totals["cancelled_count"],
        totals["updated_at"],
    )
    assert board["average_order_cents"] == totals["revenue_cents"] // totals["order_count"]
    assert _without_position(board["daily"]) == list(reversed(daily))[:366]
    ranked = sorted(
        (doc for doc in sold if doc["units_sold"] > 0),
        key=lambda doc: (-doc["units_sold"], -doc["revenue_cents"], doc["_id"]),
    )
    assert _without_position(board["top_products"]) == ranked[:100]
    mine = next(doc for doc in sold if doc["_id"] == mug["id"])
    assert (mine["units_sold"], mine["revenue_cents"]) == (3, 2100)
    assert kept["order"]["totalCents"] == 2100


async def test_lookups_by_id_and_node(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.start_worker()
    mug = await create_product(api, admin_token, stock=5)
    placed = await place(api, customer.token, [(mug["id"], 1)])
    await pipeline.wait_until_projected(token_position(placed["consistencyToken"]))
    orders = pipeline.db[(await _collections(pipeline, "orders"))["orders"]]
    products = pipeline.db[(await _collections(pipeline, "products"))["products"]]
    customers = pipeline.db[(await _collections(pipeline, "customers"))["customers"]]
    order_id = placed["order"]["id"]

    order = await order_by_id(orders, order_id.upper())
    product = await product_by_id(products, "{" + mug["id"] + "}")
    me = await customer_by_id(customers, customer.id.replace("-", ""))

    async with AsyncSession(engine) as session:
        assert order is not None
        assert _without_position([order]) == [await fallback.order_document(session, order_id)]
        assert product is not None
        assert _without_position([product]) == [await fallback.product_document(session, mug["id"])]
        assert me is not None
        assert _without_position([me]) == [await fallback.customer_document(session, customer.id)]
    for lookup, coll in (
        (order_by_id, orders),
        (product_by_id, products),
        (customer_by_id, customers),
    ):
        assert await lookup(coll, UNKNOWN_ID) is None
        assert await lookup(coll, "not-a-uuid") is None
        assert await lookup(coll, "") is None

    assert _found(await find_node(orders, products, customers, order_id.upper())) == (
        FoundOrder,
        order,
    )
    assert _found(await find_node(orders, products, customers, mug["id"])) == (
        FoundProduct,
        product,
    )
    assert _found(await find_node(orders, products, customers, customer.id)) == (
        FoundCustomer,
        me,
    )
    assert await find_node(orders, products, customers, UNKNOWN_ID) is None
    assert await find_node(orders, products, customers, "not-a-uuid") is None
    # The write store answers node(id:) with the same documents, less their positions.
    async with AsyncSession(engine) as session:
        assert _found(await written_node(session, order_id.upper())) == (
            FoundOrder,
            _without_position([order])[0],
        )
        assert _found(await written_node(session, mug["id"])) == (
            FoundProduct,
            _without_position([product])[0],
        )
        assert _found(await written_node(session, customer.id)) == (
            FoundCustomer,
            _without_position([me])[0],
        )
        assert await written_node(session, UNKNOWN_ID) is None
        assert await written_node(session, "not-a-uuid") is None


def _found(node: FoundNode | None) -> tuple[type, Mapping[str, Any]] | None:
    """What a node look-up found, as (its kind, its document), for comparing."""
    return None if node is None else (type(node), node.document)
