"""Relay over HTTP: connections page backward and forward, count, and every cached object
has an id that is the same whether the projection or the write store answered.

Real clients (Apollo's relayStylePagination, Relay) page with `last`/`before` from a
startCursor and expect hasPreviousPage, startCursor and totalCount; their caches key
objects by `id`. A consistency token sent to an app whose projection is empty forces the
write-store fallback (as in test_read_your_writes.py), to compare both read paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from app.asgi import create_app
from app.settings import Settings
from schema.global_ids import order_line_id
from tests.conftest import Api, Customer, sign_up
from tests.integration.test_reads_paging import new_tag
from tests.pipeline import Pipeline, isolated_pipeline
from tests.support import (
    CREATE_PRODUCT,
    GraphQLClient,
    error_codes,
    free_port,
    place_order,
    serving,
    token_position,
    unique,
)

PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
MY_ORDERS = f"""query($first: Int, $after: String, $last: Int, $before: String) {{
  myOrders(first: $first, after: $after, last: $last, before: $before) {{
    totalCount {PAGE_INFO}
    edges {{ cursor node {{ id status lines {{ id productId quantity }} }} }}
  }}
}}"""
PRODUCTS = f"""query($first: Int, $after: String, $last: Int, $before: String, $search: String) {{
  products(first: $first, after: $after, last: $last, before: $before, search: $search) {{
    totalCount {PAGE_INFO} edges {{ cursor node {{ id name }} }}
  }}
}}"""
INVENTORY = f"""query($first: Int, $after: String, $last: Int, $before: String) {{
  inventory(lowStockBelow: 2, first: $first, after: $after, last: $last, before: $before) {{
    totalCount {PAGE_INFO} edges {{ cursor node {{ id stock }} }}
  }}
}}"""
DASHBOARD = """{ salesDashboard {
  id orderCount daily { id date orderCount } topProducts { id productId unitsSold }
} }"""
ORDER = "query($id: ID!) { order(id: $id) { id lines { id productId sku quantity } } }"
PROJECTIONS = "{ projections { id name } }"
PLACE_WITH_LINE_IDS = """mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
  ... on OrderSuccess { consistencyToken order { id lines { id } } }
} }"""


def with_token(token: str) -> dict[str, str]:
    return {"X-Consistency-Token": token}


async def connection(
    client: GraphQLClient,
    query: str,
    field: str,
    token: str,
    variables: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body = await client.gql(query, variables, token, headers)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][field]
    return result


async def walk(
    client: GraphQLClient,
    query: str,
    field: str,
    token: str,
    size: int,
    *,
    backward: bool,
    **fixed: Any,
) -> list[dict[str, Any]]:
    """Every page of a connection, from its start forward or from its end backward."""
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(pages) < 100:
        paging = {"last": size, "before": cursor} if backward else {"first": size, "after": cursor}
        page = await connection(client, query, field, token, fixed | paging)
        pages.append(page)
        info = page["pageInfo"]
        if not (info["hasPreviousPage"] if backward else info["hasNextPage"]):
            return pages
        cursor = info["startCursor"] if backward else info["endCursor"]
    raise AssertionError("the walk does not end")


def node_ids(pages: list[dict[str, Any]]) -> list[str]:
    return [edge["node"]["id"] for page in pages for edge in page["edges"]]


async def assert_round_trip(
    client: GraphQLClient,
    query: str,
    field: str,
    token: str,
    size: int,
    expected: int,
    **fixed: Any,
) -> None:
    backward = await walk(client, query, field, token, size, backward=True, **fixed)
    forward = await walk(client, query, field, token, size, backward=False, **fixed)

    assert node_ids(list(reversed(backward))) == node_ids(forward)
    assert len(node_ids(forward)) == expected
    assert {page["totalCount"] for page in backward + forward} == {expected}
    for page in forward + backward:
        info, edges = page["pageInfo"], page["edges"]
        assert (info["startCursor"], info["endCursor"]) == (edges[0]["cursor"], edges[-1]["cursor"])
    assert forward[0]["pageInfo"]["hasPreviousPage"] is False
    assert backward[0]["pageInfo"]["hasNextPage"] is False
    # Back from the second forward page's start: the first forward page, cursors and all.
    if len(forward) > 1:
        start = forward[1]["pageInfo"]["startCursor"]
        back = await connection(
            client, query, field, token, fixed | {"last": size, "before": start}
        )
        assert back["edges"] == forward[0]["edges"]
        assert back["pageInfo"] == forward[0]["pageInfo"] | {"hasNextPage": True}


@pytest_asyncio.fixture
async def shop(api: Api, admin_token: str, read_side: Pipeline) -> dict[str, Any]:
    """A customer with seven orders (one of two lines) over a tagged catalog."""
    tag = new_tag()
    products = []
    for i, stock in enumerate([50, 0, 50, 1, 50, 50, 0]):
        product_input = {
            "sku": unique("RP"),
            "name": f"{tag} {i}",
            "priceCents": 300,
            "stock": stock,
        }
        data = await api.client.data(CREATE_PRODUCT, {"input": product_input}, admin_token)
        products.append(data["createProduct"])
    customer = await sign_up(api, "Paula Pager")
    mug, tea = products[0]["product"]["id"], products[2]["product"]["id"]
    results = [
        await place_order(
            api.client, customer.token, [(mug, 1), (tea, 2)] if i == 3 else [(mug, 1)]
        )
        for i in range(7)
    ]
    assert {r["__typename"] for r in results} == {"OrderSuccess"}, results
    last_token = results[-1]["consistencyToken"]
    await read_side.wait_until_projected(token_position(last_token))
    return {
        "tag": tag,
        "customer": customer,
        "orders": results,
        "token": last_token,
        "mug": mug,
        "tea": tea,
    }


async def test_connections_page_backward_then_forward_with_a_total_count(
    api: Api, admin_token: str, shop: dict[str, Any]
) -> None:
    customer: Customer = shop["customer"]
    for size in (2, 3, 7):
        await assert_round_trip(api.client, MY_ORDERS, "myOrders", customer.token, size, 7)
        await assert_round_trip(
            api.client, PRODUCTS, "products", customer.token, size, 7, search=shop["tag"]
        )
    orders = await walk(api.client, MY_ORDERS, "myOrders", customer.token, 3, backward=True)
    newest_first = [r["order"]["id"] for r in reversed(shop["orders"])]
    assert node_ids(list(reversed(orders))) == newest_first
    low = await connection(api.client, INVENTORY, "inventory", admin_token, {"first": 1})
    await assert_round_trip(api.client, INVENTORY, "inventory", admin_token, 4, low["totalCount"])


async def test_paging_arguments_are_checked_like_first_and_after(
    api: Api, shop: dict[str, Any]
) -> None:
    token = shop["customer"].token
    product_cursor = (await connection(api.client, PRODUCTS, "products", token, {"first": 1}))[
        "pageInfo"
    ]["endCursor"]
    refused: list[dict[str, Any]] = [
        {"first": 2, "last": 2},  # the spec discourages both; we refuse it
        {"last": 0},
        {"last": 101},
        {"last": 2, "before": "garbage!"},
        {"last": 2, "before": product_cursor},  # another listing's cursor
        {"first": 2, "before": "e30"},
    ]
    for variables in refused:
        body = await api.client.gql(MY_ORDERS, variables, token)
        assert error_codes(body) == ["BAD_USER_INPUT"], (variables, body)
        assert body["data"] is None
    # `last` alone, though the contract gives `first` a default of 20.
    literal = "{ myOrders(last: 1) { edges { node { id } } } }"
    data = await api.client.data(literal, token=token)
    assert [e["node"]["id"] for e in data["myOrders"]["edges"]] == [
        shop["orders"][0]["order"]["id"]
    ]
    both = await api.client.gql("{ myOrders(first: 20, last: 1) { totalCount } }", token=token)
    assert error_codes(both) == ["BAD_USER_INPUT"]
    assert "not both" in both["errors"][0]["message"]


@pytest_asyncio.fixture
async def write_store_api(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A second app on the run's write store whose own projections no worker fills: sent a
    consistency token, it answers from the write store."""
    async with isolated_pipeline(settings) as pipeline:
        port = free_port()
        app = create_app(pipeline.settings.model_copy(update={"port": port}))
        async with serving(app, port) as client:
            yield client


async def test_both_read_paths_answer_the_same_pages_and_ids(
    api: Api,
    admin_token: str,
    shop: dict[str, Any],
    write_store_api: GraphQLClient,
) -> None:
    size = 3
    customer: Customer = shop["customer"]
    token = shop["token"]
    order_id = shop["orders"][3]["order"]["id"]
    requests: list[tuple[str, dict[str, Any], str]] = [
        (ORDER, {"id": order_id}, customer.token),
        (MY_ORDERS, {"last": size}, customer.token),
        (MY_ORDERS, {"first": size}, customer.token),
        (PRODUCTS, {"last": size, "search": shop["tag"]}, customer.token),
        (PRODUCTS, {"first": size, "search": shop["tag"]}, customer.token),
        (INVENTORY, {"last": size}, admin_token),
        (DASHBOARD, {}, admin_token),
    ]
    for query, variables, bearer in requests:
        projected = await api.client.gql(query, variables, bearer, with_token(token))
        written = await write_store_api.gql(query, variables, bearer, with_token(token))
        assert "errors" not in projected, projected
        assert projected["extensions"]["consistency"]["servedFrom"] == "projection"
        assert written["extensions"]["consistency"]["servedFrom"] == "write_store"
        assert written["data"] == projected["data"], query
    # Going on from a page either path gave: the other path's next page is the same.
    first = await api.client.gql(MY_ORDERS, {"last": size}, customer.token, with_token(token))
    before = first["data"]["myOrders"]["pageInfo"]["startCursor"]
    pages = [
        await client.gql(
            MY_ORDERS, {"last": size, "before": before}, customer.token, with_token(token)
        )
        for client in (api.client, write_store_api)
    ]
    assert pages[0]["data"] == pages[1]["data"]

    # The ids a mutation's answer holds are the ones every later read gives.
    placed = await api.client.data(
        PLACE_WITH_LINE_IDS,
        {
            "input": {
                "lines": [
                    {"productId": shop["mug"], "quantity": 1},
                    {"productId": shop["tea"], "quantity": 1},
                ]
            }
        },
        customer.token,
    )
    answer = placed["placeOrder"]
    line_ids = [line["id"] for line in answer["order"]["lines"]]
    assert len(set(line_ids)) == 2
    assert line_ids == [order_line_id(answer["order"]["id"], n) for n in (1, 2)]
    for client in (api.client, write_store_api):
        read = await client.gql(
            ORDER,
            {"id": answer["order"]["id"]},
            customer.token,
            with_token(answer["consistencyToken"]),
        )
        assert [line["id"] for line in read["data"]["order"]["lines"]] == line_ids


async def test_every_cached_object_type_has_a_globally_unique_id(
    api: Api, admin_token: str, shop: dict[str, Any]
) -> None:
    dashboard = (await api.client.data(DASHBOARD, token=admin_token))["salesDashboard"]
    statuses = (await api.client.data(PROJECTIONS, token=admin_token))["projections"]
    orders = await connection(
        api.client, MY_ORDERS, "myOrders", shop["customer"].token, {"first": 7}
    )
    ids = (
        [dashboard["id"]]
        + [day["id"] for day in dashboard["daily"]]
        + [top["id"] for top in dashboard["topProducts"]]
        + [status["id"] for status in statuses]
        + [edge["node"]["id"] for edge in orders["edges"]]
        + [line["id"] for edge in orders["edges"] for line in edge["node"]["lines"]]
        + [top["productId"] for top in dashboard["topProducts"]]
    )
    assert len(ids) == len(set(ids)), "an id names two objects"
    assert dashboard["daily"]
    assert dashboard["topProducts"]
    assert statuses
    again = (await api.client.data(DASHBOARD, token=admin_token))["salesDashboard"]
    assert again["id"] == dashboard["id"]
    # A derived id names an object; `node` does not fetch it (decision 0049).
    node = await api.client.data(
        "query($id: ID!) { node(id: $id) { id } }", {"id": dashboard["id"]}, admin_token
    )
    assert node == {"node": None}
