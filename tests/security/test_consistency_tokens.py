"""Consistency tokens a client cannot forge or inflate, and bounded write-store fallback
inputs, over real HTTP and websockets.

A token the API did not issue is refused with BAD_USER_INPUT before any read: nothing is
waited on, nothing is read from the write store (no SQL at all), and the response carries
no `extensions.consistency`. A genuine token still reads its own write, from the write
store when no worker projects, also after the signing key was rotated.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from websockets.exceptions import ConnectionClosed

from app.asgi import create_app
from app.settings import Settings
from schema.consistency import ConsistencyTokens
from tests.conftest import Api, Customer, sign_up
from tests.pipeline import isolated_pipeline
from tests.support import (
    CREATE_PRODUCT,
    ORDER_FIELDS,
    ORDER_QUERY,
    TRANSPORT_WS,
    WS_PROTOCOLS,
    GraphQLClient,
    consistency_tokens,
    error_codes,
    free_port,
    graphql_ws,
    place_order,
    serving,
    sql_statements,
    unique,
    ws_auth,
)
from writes.models import EventRecord

NEW_KEY = "rotated-consistency-key-of-32-chars-or-more"
FOREIGN_KEY = b"a-key-this-api-has-never-been-given-0123"
SEARCH = "query($search: String, $after: String) { products(first: 5, search: $search, after: $after) { edges { node { id } } } }"
INVENTORY = "query($after: String) { inventory(lowStockBelow: 1000, first: 5, after: $after) { edges { node { id } } } }"
ORDER_AND_SEARCH = f"""query($id: ID!) {{
  order(id: $id) {{ {ORDER_FIELDS} }}
  products(first: 5, search: "mug") {{ edges {{ node {{ id }} }} }}
}}"""
MY_ORDERS_UPDATED = "subscription($after: String) { myOrdersUpdated(afterToken: $after) { id } }"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def header(token: str) -> dict[str, str]:
    return {"X-Consistency-Token": token}


def not_issued(genuine: str) -> dict[str, str]:
    """Tokens this API did not issue, each derived from a `genuine` one where that fits."""
    altered_at = len(genuine) // 2
    swapped = "B" if genuine[altered_at] == "A" else "A"
    raw = base64.urlsafe_b64decode(genuine + "=" * (-len(genuine) % 4))
    return {
        "forged": ConsistencyTokens([FOREIGN_KEY]).issue(7),
        "forged-future": ConsistencyTokens([FOREIGN_KEY]).issue(10**15),
        "altered": genuine[:altered_at] + swapped + genuine[altered_at + 1 :],
        "truncated": genuine[:-1],
        "extended": genuine + "A",
        "padded": base64.urlsafe_b64encode(raw).decode(),
        "standard-alphabet": base64.b64encode(raw).decode(),
        "old-format": b64(b"pos:1"),
        "old-format-future": b64(b"pos:999999999999"),
        "garbage": "not-a-token",
        "empty": "",
    }


async def log_head(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.max(EventRecord.position))) or 0)


async def mug(client: GraphQLClient, admin_token: str) -> dict[str, Any]:
    data = await client.data(
        CREATE_PRODUCT,
        {"input": {"sku": unique("SKU"), "name": "Token mug", "priceCents": 900, "stock": 100}},
        admin_token,
    )
    assert data["createProduct"]["__typename"] == "ProductSuccess", data
    product: dict[str, Any] = data["createProduct"]["product"]
    return product


async def placed(client: GraphQLClient, customer: Customer, product_id: str) -> dict[str, Any]:
    result = await place_order(client, customer.token, [(product_id, 1)])
    assert result["__typename"] == "OrderSuccess", result
    return result


@dataclass
class RotatedApi:
    """An app signing with a new key, on the run's write store, with an empty read side
    that no worker projects into: every read with a token ends in the write store."""

    client: GraphQLClient
    app: Starlette
    base_url: str


@pytest_asyncio.fixture(scope="module")
async def rotated(settings: Settings) -> AsyncIterator[RotatedApi]:
    async with isolated_pipeline(settings) as pipeline:
        port = free_port()
        keys = [SecretStr(NEW_KEY)]
        own = pipeline.settings.model_copy(update={"port": port, "consistency_token_keys": keys})
        app = create_app(own)
        async with serving(app, port) as client:
            yield RotatedApi(client, app, f"http://127.0.0.1:{port}")


# --- refused before any read ----------------------------------------------------------


async def test_tokens_the_api_did_not_issue_are_refused_before_any_read(
    api: Api, admin_token: str, customer: Customer
) -> None:
    product = await mug(api.client, admin_token)
    order = await placed(api.client, customer, product["id"])
    engine: AsyncEngine = api.app.state.engine

    for kind, token in not_issued(order["consistencyToken"]).items():
        with sql_statements(engine) as sent:
            body = await api.client.gql(
                ORDER_AND_SEARCH, {"id": order["order"]["id"]}, customer.token, header(token)
            )
        assert error_codes(body) == ["BAD_USER_INPUT", "BAD_USER_INPUT"], (kind, body)
        assert all("consistency token" in error["message"] for error in body["errors"]), body
        # No answer at all, from either store, and no report of one.
        assert body["data"] is None or not any(body["data"].values()), (kind, body)
        assert "consistency" not in body.get("extensions", {}), (kind, body)
        assert sent == [], (kind, sent)


async def test_a_signed_token_beyond_the_log_head_is_refused_without_a_fallback_read(
    api: Api, engine: AsyncEngine, customer: Customer
) -> None:
    """Defence in depth: a token signed with the API's own key (a leaked key, a database
    restored to before the token) naming a position never committed is refused too."""
    beyond = consistency_tokens().issue(await log_head(engine) + 1_000_000)

    with sql_statements(api.app.state.engine) as sent:
        body = await api.client.gql(
            ORDER_QUERY, {"id": customer.id}, customer.token, header(beyond)
        )

    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert "beyond the last committed event" in body["errors"][0]["message"]
    assert body["data"] == {"order": None}
    assert "consistency" not in body.get("extensions", {})
    # The log head is all the write store was asked: no order was read from it.
    assert sent, "the log head was never read"
    assert all("event_log" in statement for statement in sent), sent


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
async def test_a_forged_token_in_connection_init_is_refused(
    api: Api, customer: Customer, protocol: str
) -> None:
    forged = ConsistencyTokens([FOREIGN_KEY]).issue(10**15)
    async with graphql_ws(api.base_url, protocol, ack=False) as ws:
        if protocol == TRANSPORT_WS:
            with pytest.raises(ConnectionClosed):
                await ws.init(ws_auth(customer.token, consistency_token=forged))
            assert await ws.closed() == 4403
        else:
            reply = await ws.init(ws_auth(customer.token, consistency_token=forged))
            assert reply["type"] == "connection_error", reply
            assert reply["payload"]["code"] == "BAD_USER_INPUT", reply


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
async def test_a_forged_after_token_is_refused(api: Api, customer: Customer, protocol: str) -> None:
    async with graphql_ws(api.base_url, protocol, ws_auth(customer.token)) as ws:
        for token in not_issued(consistency_tokens().issue(1)).values():
            op_id = await ws.subscribe(MY_ORDERS_UPDATED, {"after": token})
            errors = await ws.refusal(op_id)
            assert [e.get("extensions", {}).get("code") for e in errors] == ["BAD_USER_INPUT"]


# --- genuine tokens still work ----------------------------------------------------------


async def test_a_genuine_token_reads_its_own_write(
    api: Api, admin_token: str, customer: Customer
) -> None:
    product = await mug(api.client, admin_token)
    order = await placed(api.client, customer, product["id"])

    body = await api.client.gql(
        ORDER_QUERY, {"id": order["order"]["id"]}, customer.token, header(order["consistencyToken"])
    )

    assert "errors" not in body, body
    assert body["data"]["order"] == order["order"]
    assert body["extensions"]["consistency"]["token"] == order["consistencyToken"]


async def test_with_no_worker_a_token_of_the_previous_key_reads_its_write_from_the_write_store(
    api: Api, admin_token: str, customer: Customer, rotated: RotatedApi
) -> None:
    product = await mug(api.client, admin_token)
    before = await placed(api.client, customer, product["id"])  # signed with the old key
    after = await placed(rotated.client, customer, product["id"])  # signed with the new one

    for order in (before, after):
        body = await rotated.client.gql(
            ORDER_QUERY,
            {"id": order["order"]["id"]},
            customer.token,
            header(order["consistencyToken"]),
        )
        assert "errors" not in body, body
        assert body["data"]["order"] == order["order"]
        assert body["extensions"]["consistency"]["servedFrom"] == "write_store"
    # The new key signs: the API that was not given it refuses its tokens.
    refused = await api.client.gql(
        ORDER_QUERY, {"id": after["order"]["id"]}, customer.token, header(after["consistencyToken"])
    )
    assert error_codes(refused) == ["BAD_USER_INPUT"], refused


# --- the fallback's own inputs are bounded ----------------------------------------------


def search_cases(settings: Settings) -> dict[str, str]:
    words, characters = settings.max_search_words, settings.max_search_characters
    return {
        "5,000 words": " ".join(f"word{i}" for i in range(5000)),
        "11,000 words (past asyncpg's argument limit)": " ".join(["mug"] * 11_000),
        "one word too many": " ".join(["m"] * (words + 1)),
        "one character too many": "m" * (characters + 1),
    }


async def test_a_search_beyond_its_bounds_is_refused_on_both_paths(
    api: Api, rotated: RotatedApi
) -> None:
    token = consistency_tokens().issue(1)  # genuine; the rotated app's read side is empty
    with sql_statements(rotated.app.state.engine) as sent:
        for case, search in search_cases(api.settings).items():
            answers = [
                await api.client.gql(SEARCH, {"search": search}),  # the projection
                await rotated.client.gql(SEARCH, {"search": search}, None, header(token)),
            ]
            for body in answers:
                assert error_codes(body) == ["BAD_USER_INPUT"], (case, body)
                assert body["errors"][0]["message"].startswith("search must"), body
                assert "consistency" not in body.get("extensions", {}), (case, body)
            assert answers[0]["errors"][0]["message"] == answers[1]["errors"][0]["message"]
    assert sent == []  # refused before the write store was asked anything


async def test_a_search_at_its_bounds_is_served_on_both_paths(
    api: Api, rotated: RotatedApi
) -> None:
    words = " ".join(["mug"] * api.settings.max_search_words)
    long_word = "m" * api.settings.max_search_characters
    token = consistency_tokens().issue(1)
    for search in (words, long_word):
        projected = await api.client.gql(SEARCH, {"search": search})
        written = await rotated.client.gql(SEARCH, {"search": search}, None, header(token))
        assert "errors" not in projected, projected
        assert "errors" not in written, written
        assert written["extensions"]["consistency"]["servedFrom"] == "write_store"


def cursor(kind: str, values: list[Any]) -> str:
    return b64(json.dumps({"k": kind, "v": values}).encode())


async def test_values_the_write_store_cannot_hold_are_bad_input_on_both_paths(
    api: Api, admin_token: str, rotated: RotatedApi
) -> None:
    """A NUL (PostgreSQL text cannot hold one), a lone surrogate, an integer wider than the
    column: refused as input, never an internal error from the fallback's SQL."""
    some_id = "00000000-0000-4000-8000-000000000000"
    token = consistency_tokens().issue(1)
    cases: list[tuple[str, dict[str, Any]]] = [
        (SEARCH, {"search": "mug\u0000"}),
        (SEARCH, {"after": cursor("products:by_name", ["a\u0000b", some_id])}),
        (SEARCH, {"after": cursor("products:by_name", ["\ud800", some_id])}),
        (INVENTORY, {"after": cursor("products:low_stock", [2**40, some_id])}),
        (INVENTORY, {"after": cursor("products:low_stock", [-(2**40), some_id])}),
    ]
    for query, variables in cases:
        for client in (api.client, rotated.client):
            body = await client.gql(query, variables, admin_token, header(token))
            assert error_codes(body) == ["BAD_USER_INPUT"], (variables, body)


# --- one answer for "not yours" and "not there" -----------------------------------------

NODE = "query($id: ID!) { node(id: $id) { id } }"
CANCEL = """mutation($id: ID!) { cancelOrder(input: {orderId: $id}) {
  __typename ... on UserError { code message } ... on NotFoundError { id } } }"""


async def test_another_customers_order_reads_exactly_as_a_missing_one(
    api: Api, admin_token: str, customer: Customer
) -> None:
    product = await mug(api.client, admin_token)
    order = await placed(api.client, customer, product["id"])
    stranger = await sign_up(api, "Sam Stranger")
    theirs, missing = order["order"]["id"], "00000000-0000-4000-8000-0000000000ff"
    token = order["consistencyToken"]  # read it from wherever it is freshest

    for query in (ORDER_QUERY, NODE):
        for headers in ({}, header(token)):
            answers = [
                await api.client.gql(query, {"id": order_id}, stranger.token, headers)
                for order_id in (theirs, missing)
            ]
            for answer in answers:
                assert "errors" not in answer, answers
                assert list(answer["data"].values()) == [None], answers
    # The id is real: its owner reads it, with the same token.
    mine = await api.client.gql(ORDER_QUERY, {"id": theirs}, customer.token, header(token))
    assert mine["data"]["order"]["id"] == theirs, mine

    cancels = [
        (await api.client.data(CANCEL, {"id": order_id}, stranger.token))["cancelOrder"]
        for order_id in (theirs, missing)
    ]
    for result, order_id in zip(cancels, (theirs, missing), strict=True):
        assert result == {
            "__typename": "NotFoundError",
            "code": "NOT_FOUND",
            "message": f"no order with id {order_id!r}",
            "id": order_id,
        }
