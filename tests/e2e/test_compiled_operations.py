"""Compiled operations answer exactly as the standard path does (schema/compiled/).

A differential test over real HTTP: every query in the project's docs, tests and
benchmarks, and generated selections with aliases, fragments, variables, directives and
errors, sent by every kind of caller, with and without consistency tokens, to an API
that compiles repeated operations and to one that runs everything through strawberry.
Status, headers and body bytes must be the same; the compiled API must really have
answered from its plans.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest_asyncio

from app.asgi import create_app
from tests.conftest import Api, sign_up
from tests.e2e.corpus import Operation, generated_operations, project_operations
from tests.pipeline import Pipeline
from tests.shop_api import create_product, place_ok
from tests.support import (
    ORDER_QUERY,
    GraphQLClient,
    free_port,
    scrape_metrics,
    serving,
    token_position,
)

COMPARED_HEADERS = ("content-type", "cache-control", "vary", "www-authenticate", "x-request-id")
COMPILED = "shop_graphql_compiled_operations_total"


@dataclass
class Shop:
    """What the requests are about, and who sends them."""

    order_ids: list[str]  # the owner's two, the other customer's one
    product_ids: list[str]
    callers: list[str | None]  # bearer tokens: none, owner, other, admin, garbage
    consistency: list[str | None]  # none, the latest write's, a forged one


@pytest_asyncio.fixture
async def standard(api: Api) -> AsyncIterator[GraphQLClient]:
    """The same API with compiled operations off: every request through strawberry."""
    settings = api.settings.model_copy(update={"compiled_operations": False})
    async with serving(create_app(settings), free_port()) as client:
        yield client


@pytest_asyncio.fixture
async def shop(api: Api, admin_token: str, read_side: Pipeline) -> Shop:
    owner, other = await sign_up(api, "Olive Owner"), await sign_up(api, "Otto Other")
    products = [await create_product(api, admin_token, stock=50) for _ in range(2)]
    first = await place_ok(api, owner.token, products[0]["id"], 2)
    second = await place_ok(api, owner.token, products[1]["id"], 1)
    theirs = await place_ok(api, other.token, products[0]["id"], 3)
    latest = theirs["consistencyToken"]
    # Every answer compared below must come from the same, settled projection.
    await read_side.wait_until_projected(token_position(latest))
    forged = latest[:-2] + ("AA" if not latest.endswith("AA") else "BB")
    return Shop(
        order_ids=[first["order"]["id"], second["order"]["id"], theirs["order"]["id"]],
        product_ids=[product["id"] for product in products],
        callers=[None, owner.token, other.token, admin_token, "not-a-token"],
        consistency=[None, latest, None, forged],
    )


def _candidates(shop: Shop, name: str, kind: str) -> list[Any] | None:
    """Values to try for a variable; None when the corpus cannot fill it."""
    unknown = str(uuid.uuid4())
    base = kind.rstrip("!")
    if base == "ID":
        if name in ("pid", "productId"):
            return [*shop.product_ids, unknown, shop.order_ids[0], shop.product_ids[0] + "\x00"]
        return [*shop.order_ids, shop.product_ids[0], unknown, "not-a-uuid", 12345, "\x1b[2J"]
    others: dict[str, list[Any]] = {
        "String": ["x", None],
        "Int": [2, 500],
        "Boolean": [True, False],
        "OrderStatus": ["PLACED", "SHIPPED"],
    }
    return others.get(base)


def _cases(shop: Shop, operation: Operation, count: int) -> list[dict[str, Any]]:
    candidates = {name: _candidates(shop, name, kind) for name, kind in operation.variables.items()}
    if any(values is None for values in candidates.values()):
        return []
    cases = []
    for index in range(count):
        variables = {
            name: values[(index + offset) % len(values)]
            for offset, (name, values) in enumerate(candidates.items())
            if values
        }
        if index == count - 1 and variables:  # a required variable missing: refused
            variables.pop(next(iter(variables)))
        cases.append(
            {
                "variables": variables,
                "caller": shop.callers[index % len(shop.callers)],
                "consistency": shop.consistency[index % len(shop.consistency)],
                "get": index % 3 == 2,
            }
        )
    return cases


def _headers(case: dict[str, Any], request_id: str) -> dict[str, str]:
    headers = {"x-request-id": request_id, "accept": "application/graphql-response+json"}
    if case["caller"] is not None:
        headers["authorization"] = f"Bearer {case['caller']}"
    if case["consistency"] is not None:
        headers["x-consistency-token"] = case["consistency"]
    return headers


async def _send(
    http: httpx.AsyncClient, operation: Operation, case: dict[str, Any], request_id: str
) -> tuple[int, dict[str, str | None], bytes]:
    body: dict[str, Any] = {"query": operation.query, "variables": case["variables"]}
    if operation.operation_name is not None:
        body["operationName"] = operation.operation_name
    headers = _headers(case, request_id)
    if case["get"]:
        params = {**body, "variables": orjson.dumps(body["variables"]).decode()}
        response = await http.get("/graphql", params=params, headers=headers)
    else:
        response = await http.post("/graphql", json=body, headers=headers)
    return (
        response.status_code,
        {name: response.headers.get(name) for name in COMPARED_HEADERS},
        response.content,
    )


async def _compare(
    api: Api, standard: GraphQLClient, operations: list[Operation], shop: Shop, count: int
) -> int:
    """Sends every case to both APIs (to the compiled one twice: its plan is made on the
    second sighting); returns how many cases were compared."""
    compared = 0
    request_ids = (f"diff-{n}" for n in itertools.count())
    for operation in operations:
        for case in _cases(shop, operation, count):
            request_id = next(request_ids)
            expected = await _send(standard.http, operation, case, request_id)
            for attempt in (1, 2):
                answered = await _send(api.client.http, operation, case, request_id)
                assert answered == expected, (operation.query, case, attempt, answered, expected)
            compared += 1
    return compared


async def test_the_docs_and_tests_operations_answer_the_same(
    api: Api, standard: GraphQLClient, shop: Shop
) -> None:
    before = (await scrape_metrics(api.client.http)).total(COMPILED)
    compared = await _compare(api, standard, project_operations(), shop, 4)
    after = (await scrape_metrics(api.client.http)).total(COMPILED)
    assert compared >= 200, compared
    # order(id) and product(id) operations among them went through their plans.
    assert after - before >= 20, (before, after)


async def test_generated_selections_answer_the_same(
    api: Api, standard: GraphQLClient, shop: Shop
) -> None:
    before = (await scrape_metrics(api.client.http)).total(COMPILED)
    compared = await _compare(api, standard, generated_operations(60), shop, 6)
    after = (await scrape_metrics(api.client.http)).total(COMPILED)
    assert compared == 360, compared
    assert after - before >= 150, (before, after)


async def test_the_read_benchmark_query_is_served_by_its_plan(api: Api, shop: Shop) -> None:
    """B1's order(id): after its first sighting every request is answered compiled."""
    owner = shop.callers[1]
    before = (await scrape_metrics(api.client.http)).total(COMPILED)
    bodies = [await api.client.gql(ORDER_QUERY, {"id": shop.order_ids[0]}, owner) for _ in range(3)]
    after = (await scrape_metrics(api.client.http)).total(COMPILED)
    assert after - before >= 2, (before, after)
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["data"]["order"]["id"] == shop.order_ids[0]
