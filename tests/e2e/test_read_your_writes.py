"""Read-your-writes over HTTP: a client that sends back its consistency token sees its write.

Queries read MongoDB only; PostgreSQL answers a query only when the client's token is
ahead of the projection after the bounded wait (CONSISTENCY_WAIT_MS).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from app.asgi import create_app
from app.settings import Settings
from tests.conftest import Api, Customer, sign_up
from tests.pipeline import Pipeline, isolated_pipeline
from tests.support import (
    CREATE_PRODUCT,
    MY_ORDERS_QUERY,
    ORDER_FIELDS,
    ORDER_QUERY,
    GraphQLClient,
    consistency_tokens,
    error_codes,
    free_port,
    place_order,
    serving,
    sql_statements,
    token_position,
    unique,
    without_cost,
)

ORDER = ORDER_QUERY
MY_ORDERS = MY_ORDERS_QUERY
ORDER_AND_HISTORY = f"""query($id: ID!) {{
  order(id: $id) {{ {ORDER_FIELDS} }}
  myOrders(first: 5) {{ edges {{ node {{ id status }} }} }}
}}"""
PRODUCTS = "{ products(first: 5) { edges { node { id name stock } } } }"
ME = "{ me { id orderCount lifetimeValueCents } }"
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
DASHBOARD = "{ salesDashboard { revenueCents orderCount daily { date } topProducts { name } } }"

# The consistency wait plus generous overhead for a loaded two-core machine.
FALLBACK_BUDGET_S = 1.5
RUNS = 30


async def new_product(api: Api, admin_token: str, stock: int = 1000) -> dict[str, Any]:
    data = await api.client.data(
        CREATE_PRODUCT,
        {"input": {"sku": unique("SKU"), "name": "RYW mug", "priceCents": 150, "stock": stock}},
        admin_token,
    )
    result = data["createProduct"]
    assert result["__typename"] == "ProductSuccess", result
    product: dict[str, Any] = result["product"]
    return product | {"token": result["consistencyToken"]}


async def place(client: GraphQLClient, token: str, product_id: str) -> tuple[dict[str, Any], str]:
    """The placed order as the mutation returned it, and its consistency token."""
    result = await place_order(client, token, [(product_id, 1)])
    assert result["__typename"] == "OrderSuccess", result
    order: dict[str, Any] = result["order"]
    return order, result["consistencyToken"]


def with_token(token: str) -> dict[str, str]:
    return {"X-Consistency-Token": token}


# --- no PostgreSQL for queries the projection can answer -------------------------------


async def test_a_query_never_touches_postgresql_without_a_token_or_once_caught_up(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await new_product(api, admin_token)
    order, token = await place(api.client, customer.token, product["id"])
    await read_side.wait_until_projected(token_position(token))
    engine: AsyncEngine = api.app.state.engine
    reads = [
        (ORDER, {"id": order["id"]}, customer.token),
        (MY_ORDERS, {}, customer.token),
        (PRODUCTS, {}, None),
        (ME, {}, customer.token),
        (DASHBOARD, {}, admin_token),
        (NODE, {"id": order["id"]}, customer.token),
        (NODE, {"id": product["id"]}, None),
    ]

    with sql_statements(engine) as sent:
        for query, variables, bearer in reads:
            plain = await api.client.gql(query, variables, bearer)
            tokened = await api.client.gql(query, variables, bearer, with_token(token))
            for body in (plain, tokened):
                assert "errors" not in body, body
            assert tokened["extensions"]["consistency"]["servedFrom"] == "projection"
            assert "consistency" not in plain.get("extensions", {})

    assert sent == []
    by_id = await api.client.data(ORDER, {"id": order["id"]}, customer.token)
    assert by_id["order"] == order
    # The same listener does see the write store when it is used.
    with sql_statements(engine) as sent:
        await place(api.client, customer.token, product["id"])
    assert sent


# --- read-your-writes with no worker ---------------------------------------------------


@pytest_asyncio.fixture
async def no_worker_api(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A second app on the run's write store with a read side of its own that no worker
    projects into: its projections stay empty, and nothing ever notifies it."""
    async with isolated_pipeline(settings) as pipeline:
        port = free_port()
        app = create_app(pipeline.settings.model_copy(update={"port": port}))
        async with serving(app, port) as client:
            yield client


async def test_with_the_worker_stopped_a_token_reads_its_own_write_from_the_write_store(
    api: Api, admin_token: str, no_worker_api: GraphQLClient
) -> None:
    client = no_worker_api
    customer = await sign_up(api, "Rita Reader")
    product = await new_product(api, admin_token)
    order, token = await place(client, customer.token, product["id"])
    wait_s = api.settings.consistency_wait_ms / 1000

    started = time.monotonic()
    by_id = await client.gql(ORDER, {"id": order["id"]}, customer.token, with_token(token))
    by_id_s = time.monotonic() - started
    started = time.monotonic()
    history = await client.gql(MY_ORDERS, {}, customer.token, with_token(token))
    history_s = time.monotonic() - started

    print(
        f"\nwrite-store fallback: order {by_id_s * 1000:.0f} ms, myOrders {history_s * 1000:.0f} ms"
    )
    assert "errors" not in by_id, by_id
    assert by_id["data"]["order"] == order
    assert by_id["extensions"]["consistency"] == {
        "token": token,
        "servedFrom": "write_store",
        "projectionPosition": "0",
    }
    assert "errors" not in history, history
    assert [edge["node"] for edge in history["data"]["myOrders"]["edges"]] == [order]
    assert history["extensions"]["consistency"]["servedFrom"] == "write_store"
    assert by_id_s < wait_s + FALLBACK_BUDGET_S
    assert history_s < wait_s + FALLBACK_BUDGET_S

    # node(id:) reads the three projections at once, and falls back as one read.
    for node_id, type_name, bearer in (
        (order["id"], "Order", customer.token),
        (product["id"], "Product", None),
        (customer.id, "Customer", customer.token),
    ):
        started = time.monotonic()
        node = await client.gql(NODE, {"id": node_id}, bearer, with_token(token))
        node_s = time.monotonic() - started
        assert node["data"] == {"node": {"__typename": type_name, "id": node_id}}, node
        assert node["extensions"]["consistency"]["servedFrom"] == "write_store"
        assert node_s < wait_s + FALLBACK_BUDGET_S

    # Without a token this app answers from its (empty) projection.
    plain = await client.gql(ORDER, {"id": order["id"]}, customer.token)
    assert without_cost(plain) == {"data": {"order": None}}
    plain_history = await client.data(MY_ORDERS, token=customer.token)
    assert plain_history == {"myOrders": {"edges": []}}


# --- read-your-writes with the worker running ------------------------------------------


async def test_with_the_worker_running_a_token_reads_its_write_mostly_from_the_projection(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await new_product(api, admin_token)
    await read_side.wait_until_projected(token_position(product["token"]))
    served: list[str] = []

    for _ in range(RUNS):
        order, token = await place(api.client, customer.token, product["id"])
        body = await api.client.gql(
            ORDER_AND_HISTORY, {"id": order["id"]}, customer.token, with_token(token)
        )
        assert "errors" not in body, body
        assert body["data"]["order"] == order
        assert body["data"]["myOrders"]["edges"][0]["node"] == {
            "id": order["id"],
            "status": "PLACED",
        }
        consistency = body["extensions"]["consistency"]
        assert consistency["token"] == token
        served.append(consistency["servedFrom"])
        if consistency["servedFrom"] == "projection":
            assert int(consistency["projectionPosition"]) >= token_position(token)

    from_projection = served.count("projection") / RUNS
    print(f"\nread-your-writes served from the projection: {from_projection:.0%} of {RUNS}")
    assert set(served) <= {"projection", "write_store"}
    assert from_projection >= 0.7


# --- the consistency extension -----------------------------------------------------------


async def test_extensions_consistency_is_present_exactly_when_a_token_was_sent(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await new_product(api, admin_token)
    order, token = await place(api.client, customer.token, product["id"])
    await read_side.wait_until_projected(token_position(token))
    older = consistency_tokens().issue(token_position(token) - 1)

    for query, variables, bearer in [
        (ORDER, {"id": order["id"]}, customer.token),
        (MY_ORDERS, {}, customer.token),
        (PRODUCTS, {}, None),
        (DASHBOARD, {}, admin_token),
    ]:
        plain = await api.client.gql(query, variables, bearer)
        assert "errors" not in plain, plain
        assert "consistency" not in plain.get("extensions", {})
        for sent in (token, older):
            body = await api.client.gql(query, variables, bearer, with_token(sent))
            assert "errors" not in body, body
            assert body["data"] == plain["data"]
            consistency = body["extensions"]["consistency"]
            assert consistency["token"] == sent
            assert consistency["servedFrom"] == "projection"
            assert int(consistency["projectionPosition"]) >= token_position(token)


async def test_a_token_this_api_did_not_issue_is_bad_user_input(
    api: Api, customer: Customer
) -> None:
    genuine = consistency_tokens().issue(1)
    altered = genuine[:-2] + ("B" if genuine[-2] == "A" else "A") + genuine[-1]
    unsigned = "cG9zOjE"  # "pos:1", the format before tokens were signed
    for garbage in ("garbage", "", "cG9zOi0x", altered, unsigned, "pos:12"):
        body = await api.client.gql(
            ORDER, {"id": customer.id}, customer.token, {"X-Consistency-Token": garbage}
        )
        assert error_codes(body) == ["BAD_USER_INPUT"], (garbage, body)
        assert body["data"] == {"order": None}
        assert "consistency" not in body.get("extensions", {})
