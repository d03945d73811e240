"""Projected documents equal the write-store fallback's, for scripted and random sessions.

Commands go through the real API over HTTP. Then the WHOLE event log (this run's
database is shared by every test of the session, so earlier tests' events are in it
too) is projected by the four projectors into a fresh MongoDB database, a transaction
per batch, and `verify_projection` must find no difference at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.bootstrap import build_mongo
from app.settings import Settings
from reads.documents import COLLECTIONS, INDEXES, ensure_indexes
from reads.fallback import (
    customer_document,
    order_document,
    order_documents,
    product_document,
    projection_documents,
)
from tests.conftest import Api, Customer, sign_up
from tests.shop_api import create_product, place
from tests.support import (
    CANCEL_ORDER,
    CHANGE_PRICE,
    RESTOCK,
    SHIP_ORDER,
    project,
    stored_events,
)
from workers.projectors import PROJECTORS
from workers.verify import verify_projection
from writes.models import EventRecord

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@dataclass
class ReadStore:
    """A fresh MongoDB database the projectors write into, and how far they got."""

    client: AsyncMongoClient[dict[str, Any]]
    db: AsyncDatabase[dict[str, Any]]
    collections: dict[str, str]
    position: int = 0

    async def catch_up(self, engine: AsyncEngine) -> int:
        """Project every event after `position`; a transaction per projection and batch."""
        projected = 0
        while batch := await stored_events(engine, self.position, limit=500):
            for projector in PROJECTORS.values():
                await project(self.client, self.db, self.collections, projector, batch)
            self.position = batch[-1].position
            projected += len(batch)
        return projected

    async def verify(self, engine: AsyncEngine) -> dict[str, list[str]]:
        """Every projection's differences from the write store (all lists empty when equal)."""
        async with AsyncSession(engine) as session:
            return {
                name: await verify_projection(self.db, self.collections, session, name)
                for name in PROJECTORS
            }

    def collection(self, logical: str) -> Any:
        return self.db[self.collections[logical]]


@pytest_asyncio.fixture
async def store(settings: Settings) -> AsyncIterator[ReadStore]:
    """A read store in its own database, under physical names unlike the logical ones."""
    assert settings.mongodb_url is not None
    client: AsyncMongoClient[dict[str, Any]] = build_mongo(settings, patient=True)
    name = f"{settings.mongodb_database}_{uuid.uuid4().hex[:8]}"
    # Rebuilds use other physical names: exercise the logical -> physical mapping.
    store = ReadStore(client, client[name], {c: f"{c}__g1" for c in COLLECTIONS})
    try:
        await ensure_indexes(store.db, store.collections)
        yield store
    finally:
        await client.drop_database(name)
        await client.close()


def clean(differences: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: lines for name, lines in differences.items() if lines}


async def _event_position(engine: AsyncEngine, event_type: str, stream_id: str) -> int:
    async with engine.connect() as conn:
        position = await conn.scalar(
            select(EventRecord.position).where(
                EventRecord.type == event_type, EventRecord.stream_id == uuid.UUID(stream_id)
            )
        )
    assert position is not None
    return int(position)


# -- scripted ------------------------------------------------------------------------------


async def test_a_scripted_session_projects_to_exactly_the_write_stores_documents(
    api: Api, admin_token: str, engine: AsyncEngine, store: ReadStore
) -> None:
    ann = await sign_up(api, "Ann Archer")
    bob = await sign_up(api, "Bob Baker")
    mug = await create_product(api, admin_token, stock=10, price=1250)
    tea = await create_product(api, admin_token, stock=2, price=499)
    empty = await create_product(api, admin_token, stock=0, price=999)
    await api.client.data(
        CHANGE_PRICE, {"input": {"productId": mug["id"], "priceCents": 1300}}, admin_token
    )
    await api.client.data(RESTOCK, {"input": {"productId": tea["id"], "quantity": 4}}, admin_token)

    first = await place(api, ann.token, [(mug["id"], 2), (tea["id"], 3)])
    keyed = await place(api, ann.token, [(mug["id"], 1)], key="retry-me")
    replay = await place(api, ann.token, [(mug["id"], 1)], key="retry-me")
    refused = await place(api, bob.token, [(tea["id"], 99)])
    missing = await place(api, bob.token, [(UNKNOWN_ID, 1)])
    second = await place(api, bob.token, [(tea["id"], 3), (mug["id"], 1)])
    assert [r["__typename"] for r in (first, keyed, refused, missing, second)] == [
        "OrderSuccess",
        "OrderSuccess",
        "InsufficientStockError",
        "NotFoundError",
        "OrderSuccess",
    ]
    assert replay["order"]["id"] == keyed["order"]["id"]
    first_id, second_id = first["order"]["id"], second["order"]["id"]
    cancelled = await api.client.data(CANCEL_ORDER, {"input": {"orderId": first_id}}, ann.token)
    shipped = await api.client.data(SHIP_ORDER, {"input": {"orderId": second_id}}, admin_token)
    too_late = await api.client.data(CANCEL_ORDER, {"input": {"orderId": second_id}}, bob.token)
    assert cancelled["cancelOrder"]["__typename"] == "OrderSuccess"
    assert shipped["shipOrder"]["__typename"] == "OrderSuccess"
    assert too_late["cancelOrder"]["__typename"] == "InvalidTransitionError"

    assert await store.catch_up(engine) > 0
    assert clean(await store.verify(engine)) == {}

    # Spot checks of what "equal to the fallback" means for this script.
    order = await store.collection("orders").find_one({"_id": first_id})
    assert order["status"] == "CANCELLED"
    assert order["version"] == 2
    assert order["position"] == await _event_position(engine, "OrderCancelled", first_id)
    assert [line["quantity"] for line in order["lines"]] == [2, 3]
    products = store.collection("products")
    assert (await products.find_one({"_id": empty["id"]}))["in_stock"] is False
    tea_doc = await products.find_one({"_id": tea["id"]})
    assert (tea_doc["stock"], tea_doc["units_sold"], tea_doc["version"]) == (3, 3, 2)
    ann_doc = await store.collection("customers").find_one({"_id": ann.id})
    assert (ann_doc["order_count"], ann_doc["lifetime_value_cents"]) == (1, 1300)
    top = await store.collection("sales_products").find_one({"_id": tea["id"]})
    assert (top["units_sold"], top["revenue_cents"]) == (3, 3 * 499)


async def test_the_single_document_fallbacks_match_the_projection(
    api: Api, admin_token: str, engine: AsyncEngine, store: ReadStore, customer: Customer
) -> None:
    product = await create_product(api, admin_token, stock=3, price=700)
    placed = await place(api, customer.token, [(product["id"], 2)])
    other = await place(api, customer.token, [(product["id"], 1)])
    await store.catch_up(engine)

    async with AsyncSession(engine) as session:
        pairs = [
            ("orders", placed["order"]["id"], await order_document(session, placed["order"]["id"])),
            ("products", product["id"], await product_document(session, product["id"])),
            ("customers", customer.id, await customer_document(session, customer.id)),
        ]
        for logical, doc_id, built in pairs:
            projected = await store.collection(logical).find_one({"_id": doc_id})
            assert projected is not None
            projected.pop("position")
            assert built == projected
        both = await order_documents(
            session, [other["order"]["id"], "junk", placed["order"]["id"], UNKNOWN_ID]
        )
        assert [doc["_id"] for doc in both] == [other["order"]["id"], placed["order"]["id"]]
        for find in (order_document, product_document, customer_document):
            assert await find(session, UNKNOWN_ID) is None
            assert await find(session, "not-a-uuid") is None
        with pytest.raises(ValueError, match="unknown projection"):
            await projection_documents(session, "nope")


async def test_verify_names_missing_extra_and_differing_documents(
    api: Api, admin_token: str, engine: AsyncEngine, store: ReadStore, customer: Customer
) -> None:
    product = await create_product(api, admin_token, stock=5)
    placed = await place(api, customer.token, [(product["id"], 1)])
    await store.catch_up(engine)
    assert clean(await store.verify(engine)) == {}

    await store.collection("products").update_one({"_id": product["id"]}, {"$inc": {"stock": 1}})
    await store.collection("customers").delete_one({"_id": customer.id})
    await store.collection("orders").insert_one({"_id": "ghost", "status": "PLACED"})
    await store.collection("orders").update_one(
        {"_id": placed["order"]["id"]}, {"$set": {"position": -1}}
    )

    differences = clean(await store.verify(engine))
    assert set(differences) == {"products", "customers", "orders"}
    assert differences["products"] == [
        f"products/{product['id']}: stock: projection 5 != write store 4"
    ]
    [customer_line] = differences["customers"]
    assert customer_line.startswith(f"customers/{customer.id}: missing from the projection")
    [order_line] = differences["orders"]  # the position alone is no difference
    assert order_line.startswith("orders/ghost: extra in the projection")


async def test_indexes_exist_on_the_physical_collections(store: ReadStore) -> None:
    for logical, models in INDEXES.items():
        names = {index["name"] async for index in await store.collection(logical).list_indexes()}
        assert {model.document["name"] for model in models} <= names
    await ensure_indexes(store.db, store.collections)  # idempotent


# -- random command sequences ---------------------------------------------------------------


@dataclass
class World:
    """What the random session has made so far (it outlives one hypothesis example)."""

    customers: list[Customer] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    orders: list[tuple[str, Customer]] = field(default_factory=list)


@pytest.fixture
def world() -> World:
    return World()


index = st.integers(min_value=0, max_value=10_000)
order_lines = st.tuples(index, st.integers(1, 3))
order_step = st.tuples(
    st.just("order"),
    index,
    # Distinct products mostly; now and then a repeated one (refused as a whole).
    st.lists(order_lines, min_size=1, max_size=3, unique_by=lambda line: line[0])
    | st.lists(order_lines, min_size=2, max_size=2),
)
order_change_step = st.tuples(
    st.sampled_from(["cancel", "ship"]), index, st.sampled_from(["owner", "admin", "stranger"])
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("sign_up")),
        st.tuples(st.just("create"), st.integers(0, 20), st.integers(0, 100_000)),
        st.tuples(st.just("price"), index, st.integers(0, 100_000)),
        st.tuples(st.just("restock"), index, st.integers(1, 10)),
        # Orders and their changes are what most projections are about: weigh them up.
        order_step,
        order_step,
        order_step,
        order_change_step,
        order_change_step,
    ),
    min_size=1,
    max_size=12,
)


async def run_step(api: Api, admin_token: str, world: World, step: tuple[Any, ...]) -> None:
    """One command; refusals (stock, transitions, duplicates, permissions) are welcome."""
    kind = step[0]
    if kind == "sign_up" or (kind in {"order", "cancel"} and not world.customers):
        world.customers.append(await sign_up(api, "Random Customer"))
    if kind == "create" or (kind != "sign_up" and not world.products):
        stock, price = (step[1], step[2]) if kind == "create" else (3, 100)
        world.products.append((await create_product(api, admin_token, stock, price))["id"])
    if kind == "price":
        product = world.products[step[1] % len(world.products)]
        variables = {"input": {"productId": product, "priceCents": step[2]}}
        await api.client.data(CHANGE_PRICE, variables, admin_token)
    elif kind == "restock":
        product = world.products[step[1] % len(world.products)]
        variables = {"input": {"productId": product, "quantity": step[2]}}
        await api.client.data(RESTOCK, variables, admin_token)
    elif kind == "order":
        who = world.customers[step[1] % len(world.customers)]
        lines = [(world.products[i % len(world.products)], qty) for i, qty in step[2]]
        result = await place(api, who.token, lines)
        if result["__typename"] == "OrderSuccess":
            world.orders.append((result["order"]["id"], who))
    elif kind in {"cancel", "ship"} and world.orders:
        order_id, owner = world.orders[step[1] % len(world.orders)]
        if kind == "ship":
            query, token = SHIP_ORDER, admin_token
        else:
            query, token = (
                CANCEL_ORDER,
                {"owner": owner.token, "admin": admin_token}.get(step[2], world.customers[0].token),
            )
        await api.client.gql(query, {"input": {"orderId": order_id}}, token)


@hypothesis_settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(script=steps)
async def test_random_command_sequences_project_to_the_write_stores_documents(
    api: Api,
    admin_token: str,
    engine: AsyncEngine,
    store: ReadStore,
    world: World,
    script: list[tuple[Any, ...]],
) -> None:
    for step in script:
        await run_step(api, admin_token, world, step)

    # The store carries over between examples: each one projects only what is new,
    # the way the worker does, and the whole projection must still equal the write store.
    await store.catch_up(engine)
    assert clean(await store.verify(engine)) == {}
