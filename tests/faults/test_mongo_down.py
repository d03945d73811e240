"""MongoDB stopped: order(id) with or without token answers from the write store; salesDashboard
answers READ_MODEL_UNAVAILABLE quickly.

The test runs a mongod of its own (the embedded one, under its tmp dir) and a second app
reading from it, places an order through that app, stops that mongod and queries: by-id
reads and myOrders fall back to PostgreSQL, reads with no write-store form (and a
subscription) say READ_MODEL_UNAVAILABLE, each within a bound; never a 500, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from app.asgi import create_app
from app.embedded import embedded_services
from app.settings import Settings
from tests.conftest import Api, Customer
from tests.support import (
    CREATE_PRODUCT,
    MY_ORDERS_QUERY,
    ORDER_QUERY,
    GraphQLClient,
    error_codes,
    free_port,
    graphql_ws,
    place_order,
    serving,
    unique,
    without_cost,
)

ORDER = ORDER_QUERY
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
MY_ORDERS = MY_ORDERS_QUERY
DASHBOARD = "{ salesDashboard { revenueCents orderCount } }"
PRODUCTS = "{ products(first: 5) { edges { node { id } } } }"
INVENTORY = "{ inventory { edges { node { id } } } }"
PROJECTIONS = "{ projections { name } }"

# A read gives up on MongoDB after MONGODB_TIMEOUT_MS (1 s by default: about 1.5 s end to
# end, measured); the rest is headroom for a loaded two-core machine.
HEADROOM_S = 2.5
# Far beyond any budget: a request still running then is hanging.
HANG_S = 30


class OwnMongo:
    """A mongod of the test's own (the embedded one, under `data_dir`), to stop and start
    again; it keeps its port, so the URL stays the same."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = ""
        self._stack: contextlib.ExitStack | None = None

    async def start(self) -> None:
        def start() -> contextlib.ExitStack:
            stack = contextlib.ExitStack()
            urls = stack.enter_context(
                embedded_services(self.data_dir, mongo=True, postgres=False, redis=False)
            )
            assert urls.mongodb_url is not None
            assert self.url in ("", urls.mongodb_url)
            self.url = urls.mongodb_url
            return stack

        self._stack = await asyncio.to_thread(start)

    async def stop(self) -> None:
        """A clean shutdown (SIGTERM), as the embedded services stop."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await asyncio.to_thread(stack.close)

    @property
    def running(self) -> bool:
        return self._stack is not None


@pytest_asyncio.fixture
async def own_mongo(tmp_path: Path) -> AsyncIterator[OwnMongo]:
    mongo = OwnMongo(tmp_path / "services")
    await mongo.start()
    try:
        yield mongo
    finally:
        await mongo.stop()
        # A few hundred MB of database files; pytest would keep them with its tmp dirs.
        await asyncio.to_thread(shutil.rmtree, mongo.data_dir, True)


@pytest_asyncio.fixture
async def mongo_app(settings: Settings, own_mongo: OwnMongo) -> AsyncIterator[GraphQLClient]:
    """The app on the run's PostgreSQL and Redis, reading the test's own MongoDB."""
    port = free_port()
    own = settings.model_copy(update={"mongodb_url": own_mongo.url, "port": port})
    async with serving(create_app(own), port) as client:
        try:
            yield client
        finally:
            # PyMongo 4.20 leaks a socket (a ResourceWarning, an error here) when a client
            # closes while its monitor connects to a server that is down (PYTHON-5867).
            if not own_mongo.running:
                await own_mongo.start()


async def timed(
    client: GraphQLClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[dict[str, Any], float]:
    """The response body (a 200, never a 500) and how long it took; a hang fails."""
    started = time.monotonic()
    async with asyncio.timeout(HANG_S):
        response: httpx.Response = await client.post(query, variables, token, headers)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, took


async def test_with_mongodb_stopped_by_id_reads_fall_back_and_the_rest_say_unavailable(
    api: Api,
    admin_token: str,
    customer: Customer,
    own_mongo: OwnMongo,
    mongo_app: GraphQLClient,
) -> None:
    client = mongo_app
    budget_s = api.settings.mongodb_timeout_ms / 1000 + HEADROOM_S
    created = await client.data(
        CREATE_PRODUCT,
        {"input": {"sku": unique("SKU"), "name": "Outage mug", "priceCents": 900, "stock": 5}},
        admin_token,
    )
    product = created["createProduct"]["product"]
    placed = await place_order(client, customer.token, [(product["id"], 2)])
    assert placed["__typename"] == "OrderSuccess", placed
    order, token = placed["order"], placed["consistencyToken"]
    # While MongoDB is up, nothing has projected into it: the order is not there yet.
    assert await client.data(ORDER, {"id": order["id"]}, customer.token) == {"order": None}

    await own_mongo.stop()

    tokened = {"X-Consistency-Token": token}
    by_id = {"id": order["id"]}
    asked = {
        "order, token": (ORDER, by_id, customer.token, tokened),
        "order": (ORDER, by_id, customer.token, None),
        "node": (NODE, by_id, customer.token, None),
        "myOrders": (MY_ORDERS, None, customer.token, None),
        "myOrders, token": (MY_ORDERS, None, customer.token, tokened),
        "salesDashboard": (DASHBOARD, None, admin_token, None),
        "salesDashboard, token": (DASHBOARD, None, admin_token, tokened),
        "products": (PRODUCTS, None, None, None),
        "inventory": (INVENTORY, None, admin_token, None),
        "projections": (PROJECTIONS, None, admin_token, None),
    }
    # All at once: an outage must not make requests queue behind each other either.
    answers = await asyncio.gather(*(timed(client, *request) for request in asked.values()))
    body = dict(zip(asked, (answer[0] for answer in answers), strict=True))
    took = dict(zip(asked, (answer[1] for answer in answers), strict=True))
    print("\nwith MongoDB down: " + ", ".join(f"{k} {v:.2f} s" for k, v in took.items()))

    # By id and a customer's history: the write store answers, in the same shape.
    assert body["order, token"]["data"] == {"order": order}
    assert body["order, token"]["extensions"]["consistency"]["servedFrom"] == "write_store"
    assert without_cost(body["order"]) == {"data": {"order": order}}
    assert without_cost(body["node"]) == {
        "data": {"node": {"__typename": "Order", "id": order["id"]}}
    }
    assert without_cost(body["myOrders"]) == {"data": {"myOrders": {"edges": [{"node": order}]}}}
    assert body["myOrders, token"]["data"] == {"myOrders": {"edges": [{"node": order}]}}
    assert body["myOrders, token"]["extensions"]["consistency"]["servedFrom"] == "write_store"
    # No write-store form: a coded top-level error.
    for name in ("salesDashboard", "salesDashboard, token", "products", "inventory", "projections"):
        assert error_codes(body[name]) == ["READ_MODEL_UNAVAILABLE"], (name, body[name])
        assert body[name]["data"] is None
    slow = {name: seconds for name, seconds in took.items() if seconds > budget_s}
    assert not slow, f"over {budget_s} s: {slow}"

    # A subscription's first read of the read model fails: it ends with the same code.
    async with graphql_ws(str(client.http.base_url), "graphql-transport-ws", {}) as ws:
        op_id = await ws.subscribe("subscription { productUpdated { id } }")
        errors = await ws.refusal(op_id, budget_s=HANG_S)
        assert error_codes({"errors": errors}) == ["READ_MODEL_UNAVAILABLE"], errors

    # MongoDB back: the same app reads its read model again, without a restart.
    await own_mongo.start()
    back, _ = await timed(client, ORDER, by_id, customer.token)
    assert without_cost(back) == {
        "data": {"order": None}
    }  # nothing was projected into this MongoDB
    dashboard, _ = await timed(client, DASHBOARD, token=admin_token)
    assert "errors" not in dashboard, dashboard
