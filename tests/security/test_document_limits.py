"""Hostile documents against the real server: each refused with its code, none answered
with an internal error, none allowed to make validation walk an exponential expansion.

The anchors are GraphQL Armor's protections (depth, aliases, directives, tokens,
characters, cost, no field suggestions) and the OWASP GraphQL cheat sheet's (fragment
cycles, field duplication, ambiguous batches of operations).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from app.asgi import create_app
from app.settings import Settings
from tests.conftest import Api, Customer
from tests.support import (
    WS_PROTOCOLS,
    GraphQLClient,
    error_codes,
    free_port,
    graphql_ws,
    serving,
    ws_auth,
)

INTERNAL = "INTERNAL_SERVER_ERROR"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
ORDER_PAGE = "myOrders(first: 100) { edges { node { lines { sku } } } }"
# One read, then per order an edge, a node and up to 50 lines (decision 0021).
ORDER_PAGE_COST = 10 + 100 * (1 + 1 + 50)


def doubling(levels: int) -> str:
    """The issue's 818-byte document at 20 levels: each fragment spreads the next twice."""
    fragments = " ".join(
        f"fragment G{n} on Query {{ ...G{n + 1} ...G{n + 1} }}" for n in range(levels)
    )
    return f"{{ ...G0 }} {fragments} fragment G{levels} on Query {{ apiVersion }}"


def nested(levels: int) -> str:
    """Fields nested `levels` deep (unknown ones: validation would have to walk them)."""
    return "{ " + " { ".join(f"f{n}" for n in range(levels)) + " }" * levels


@dataclass(frozen=True)
class Hostile:
    name: str
    document: str
    code: str
    limit: str | None  # extensions.limit of the refusal, when a limit refused it

    def __str__(self) -> str:
        return self.name


def hostile_documents(settings: Settings) -> list[Hostile]:
    over_aliases = " ".join(f"a{n}: apiVersion" for n in range(settings.max_query_aliases + 1))
    over_directives = " ".join(
        f"f{n}: __typename @include(if: true)" for n in range(settings.max_query_directives + 1)
    )
    over_fields = "{ me { " + " id" * settings.max_query_fields + " } }"
    repeated = "{ " + " me { id }" * 64 + " }"  # 2 x (64 choose 2) pairs to compare
    padding = "#" + "x" * settings.max_query_characters + "\n"
    over_tokens = "{ " + " a" * settings.max_query_tokens + " }"  # within the characters
    return [
        Hostile("doubling fragments, 20 levels", doubling(20), VALIDATION_FAILED, "fields"),
        Hostile("doubling fragments, 40 levels", doubling(40), VALIDATION_FAILED, "fields"),
        Hostile("doubling fragments, 200 levels", doubling(200), "GRAPHQL_PARSE_FAILED", None),
        Hostile("fragment cycle", "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }", VALIDATION_FAILED, "fragment cycles"),
        Hostile("nested too deep", nested(settings.max_query_depth + 2), VALIDATION_FAILED, "depth"),
        Hostile("too many aliases", "{ " + over_aliases + " }", VALIDATION_FAILED, "aliases"),
        Hostile("too many directives", "{ " + over_directives + " }", VALIDATION_FAILED, "directives"),
        Hostile("too many fields", over_fields, VALIDATION_FAILED, "fields"),
        Hostile("one field repeated", repeated, VALIDATION_FAILED, "repeated fields"),
        Hostile("too many characters", padding + "{ apiVersion }", VALIDATION_FAILED, "characters"),
        Hostile("too many tokens", over_tokens, "GRAPHQL_PARSE_FAILED", None),
        Hostile("two operations, no operationName", "query A { apiVersion } query B { apiVersion }", "OPERATION_RESOLUTION_FAILURE", None),
    ]  # fmt: skip


def refusal_of(body: dict[str, Any]) -> tuple[list[str], set[str | None]]:
    errors = body.get("errors") or []
    limits = {error.get("extensions", {}).get("limit") for error in errors}
    return error_codes(body), limits


@pytest.mark.parametrize("index", range(12), ids=lambda i: f"case{i}")
async def test_a_hostile_document_is_refused_with_its_code(api: Api, index: int) -> None:
    case = hostile_documents(api.settings)[index]

    response = await api.client.post(case.document)

    assert response.status_code == 200, response.text[:500]
    body = response.json()
    codes, limits = refusal_of(body)
    assert codes, body
    assert set(codes) == {case.code}, (case.name, body)
    assert body.get("data") is None
    if case.limit is not None:
        assert case.limit in limits, (case.name, body)


def test_the_catalogue_lists_every_case() -> None:
    assert len(hostile_documents(Settings(_env_file=None))) == 12  # type: ignore[call-arg]


async def test_a_refusal_names_the_limit_and_the_measured_size(api: Api) -> None:
    body = await api.client.gql(doubling(20))

    fields = next(e for e in body["errors"] if e["extensions"]["limit"] == "fields")
    assert fields["extensions"] == {
        "code": VALIDATION_FAILED,
        "limit": "fields",
        "measured": 2**20,
        "maximum": api.settings.max_query_fields,
    }


async def test_the_doubling_document_leaves_the_server_answering(api: Api) -> None:
    """Refused documents cost nothing lasting: the next plain query is answered."""
    for levels in (20, 40, 200):
        assert INTERNAL not in error_codes(await api.client.gql(doubling(levels)))

    assert await api.client.data("{ apiVersion }")


async def test_fifteen_aliased_pages_of_orders_are_refused_with_their_cost(
    api: Api, customer: Customer
) -> None:
    aliased = " ".join(f"p{n}: {ORDER_PAGE}" for n in range(15))

    body = await api.client.gql("{ " + aliased + " }", token=customer.token)

    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "cost": 15 * ORDER_PAGE_COST,
        "budget": api.settings.query_budget_customer,
    }
    assert body.get("data") is None


async def test_an_accepted_operation_reports_its_cost_and_the_callers_budget(
    api: Api, customer: Customer, admin_token: str
) -> None:
    as_customer = await api.client.gql("{ " + ORDER_PAGE + " }", token=customer.token)
    anonymous = await api.client.gql("{ apiVersion }")
    as_admin = await api.client.gql("{ apiVersion }", token=admin_token)

    assert "errors" not in as_customer, as_customer
    assert as_customer["extensions"]["cost"] == {
        "requested": ORDER_PAGE_COST,
        "budget": api.settings.query_budget_customer,
    }
    assert anonymous["extensions"]["cost"] == {
        "requested": 10,
        "budget": api.settings.query_budget_anonymous,
    }
    assert as_admin["extensions"]["cost"]["budget"] == api.settings.query_budget_admin


async def test_page_sizes_in_variables_are_priced(api: Api) -> None:
    query = "query($n: Int) { products(first: $n) { edges { node { id } } } }"

    small = await api.client.gql(query, {"n": 3})
    pages = "query($n: Int) { " + " ".join(
        f"p{i}: products(first: $n) {{ edges {{ node {{ id }} }} }}" for i in range(8)
    )
    too_many = await api.client.gql(pages + " }", {"n": 100})

    assert small["extensions"]["cost"]["requested"] == 10 + 3 * 2
    assert error_codes(too_many) == ["QUERY_TOO_COMPLEX"]
    assert too_many["errors"][0]["extensions"]["cost"] == 8 * (10 + 100 * 2)


async def test_a_bad_token_is_refused_as_unauthenticated_not_by_the_budget(api: Api) -> None:
    body = await api.client.gql("{ " + ORDER_PAGE + " }", token="not.a.jwt")

    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_a_named_operation_of_several_runs(api: Api) -> None:
    response = await api.client.http.post(
        "/graphql",
        json={"query": "query A { apiVersion } query B { __typename }", "operationName": "B"},
    )

    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
async def test_a_hostile_subscription_is_refused_over_a_websocket(api: Api, protocol: str) -> None:
    subscription = (
        doubling(40)
        .replace("{ ...G0 }", "subscription { ...G0 }", 1)
        .replace("on Query", "on Subscription")
        .replace("apiVersion", "productUpdated { id }")
    )

    async with graphql_ws(api.base_url, protocol, ws_auth()) as ws:
        op_id = await ws.subscribe(subscription)
        errors = await ws.refusal(op_id)

        # The socket still serves after the refusal.
        await ws.sync()

    assert {e["extensions"]["code"] for e in errors} == {VALIDATION_FAILED}
    assert "fields" in {e["extensions"].get("limit") for e in errors}


# --- production settings: no suggestions; a small budget shows subscriptions priced ---


@asynccontextmanager
async def production(api: Api) -> AsyncIterator[tuple[GraphQLClient, str]]:
    """The app with production settings and an anonymous budget of 5, served; its client
    and base URL."""
    settings = api.settings.model_copy(
        update={
            "environment": "production",
            "jwt_secret": "production-secret-" + "x" * 40,
            "port": free_port(),
            "query_budget_anonymous": 5,
        }
    )
    async with serving(create_app(settings), settings.port) as client:
        yield client, f"http://127.0.0.1:{settings.port}"


async def test_production_gives_no_field_suggestions(api: Api) -> None:
    misspelled = "{ produts { edges { node { id } } } }"
    development = await api.client.gql(misspelled)

    async with production(api) as (client, _):
        body = await client.gql(misspelled)
        argument = await client.gql('{ product(id: "1") { nmae } }')

    assert "Did you mean 'products'" in development["errors"][0]["message"]
    assert error_codes(body) == [VALIDATION_FAILED]
    assert [e["message"] for e in body["errors"]] == [
        "Cannot query field 'produts' on type 'Query'."
    ]
    assert "Did you mean" not in str(argument)


async def test_a_subscription_over_the_budget_is_refused_with_its_cost(api: Api) -> None:
    refusals = []
    async with production(api) as (_, base_url):
        for protocol in WS_PROTOCOLS:
            async with graphql_ws(base_url, protocol, ws_auth()) as ws:
                op_id = await ws.subscribe("subscription { productUpdated { id sku } }")
                refusals.append([e["extensions"] for e in await ws.refusal(op_id)])

    expected = [{"code": "QUERY_TOO_COMPLEX", "cost": 10 + 1, "budget": 5}]
    assert refusals == [expected, expected]
