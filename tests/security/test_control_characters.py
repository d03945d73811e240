"""NUL and other control characters in every string input of the contract, over real HTTP
and websockets: each refused with its code, never INTERNAL_SERVER_ERROR, nothing written.

Mutation text answers a ValidationError naming the field (before any password hashing);
a mutation's id answers NotFoundError (a malformed id names nothing); query and
subscription arguments answer BAD_USER_INPUT, whether sent as variables or literals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import PASSWORD, Api, Customer, sign_up
from tests.support import (
    CANCEL_ORDER,
    CHANGE_PRICE,
    CREATE_PRODUCT,
    PLACE_ORDER,
    RESTOCK,
    SHIP_ORDER,
    TRANSPORT_WS,
    error_codes,
    event_count,
    graphql_ws,
    new_product,
    place_order,
    unique,
    ws_auth,
)

# NUL (PostgreSQL refuses it in text) and ESC (terminal escape sequences in logs).
CONTROL = ["\x00", "\x1b"]
BROKEN = "<broken>"  # (BROKEN, valid value): that value with the control character inside

AUTH_RESULT = """__typename ... on UserError { code message } ... on ValidationError { field }"""
SIGN_UP = f"mutation($input: SignUpInput!) {{ signUp(input: $input) {{ {AUTH_RESULT} }} }}"
LOG_IN = f"mutation($input: LogInInput!) {{ logIn(input: $input) {{ {AUTH_RESULT} }} }}"


@dataclass(frozen=True)
class World:
    customer: Customer
    admin_token: str
    product_id: str
    order_id: str


@dataclass(frozen=True)
class MutationCase:
    name: str
    document: str
    variables: dict[str, Any]  # BROKEN marks the input that carries the character
    typename: str
    field: str | None = None
    token: str = "customer"  # or "admin", or "none"

    def __str__(self) -> str:
        return self.name


def broken(value: str, character: str) -> str:
    """A value that would be valid but for a control character in the middle."""
    return value[: len(value) // 2] + character + value[len(value) // 2 :]


def fill(value: Any, world: World, character: str) -> Any:
    if isinstance(value, dict):
        return {key: fill(item, world, character) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, world, character) for item in value]
    if isinstance(value, tuple) and value[0] == BROKEN:
        return broken(fill(value[1], world, character), character)
    if value == "<product>":
        return world.product_id
    if value == "<order>":
        return world.order_id
    if value == "<email>":
        return f"{unique('ctrl')}@example.com"
    if value == "<customer-email>":
        return world.customer.email
    return value


def _sign_up(**fields: Any) -> dict[str, Any]:
    return {"input": {"email": "<email>", "name": "Nul Tester", "password": PASSWORD} | fields}


def _log_in(**fields: Any) -> dict[str, Any]:
    return {"input": {"email": "<customer-email>", "password": PASSWORD} | fields}


def _product(**fields: Any) -> dict[str, Any]:
    sku = unique("SKU")
    return {"input": {"sku": sku, "name": "Tea", "priceCents": 100, "stock": 1} | fields}


def _order(product_id: Any = "<product>", key: Any = None) -> dict[str, Any]:
    return {"input": {"lines": [{"productId": product_id, "quantity": 1}], "idempotencyKey": key}}


MUTATION_CASES = [
    MutationCase("signUp email", SIGN_UP, _sign_up(email=(BROKEN, "<email>")), "ValidationError", "email", "none"),
    MutationCase("signUp name", SIGN_UP, _sign_up(name=(BROKEN, "Nul Tester")), "ValidationError", "name", "none"),
    MutationCase("signUp password", SIGN_UP, _sign_up(password=(BROKEN, PASSWORD)), "ValidationError", "password", "none"),
    MutationCase("logIn email", LOG_IN, _log_in(email=(BROKEN, "<customer-email>")), "ValidationError", "email", "none"),
    MutationCase("logIn password", LOG_IN, _log_in(password=(BROKEN, PASSWORD)), "ValidationError", "password", "none"),
    MutationCase("createProduct sku", CREATE_PRODUCT, _product(sku=(BROKEN, "SKU-1")), "ValidationError", "sku", "admin"),
    MutationCase("createProduct name", CREATE_PRODUCT, _product(name=(BROKEN, "Green tea")), "ValidationError", "name", "admin"),
    MutationCase("createProduct description", CREATE_PRODUCT, _product(description=(BROKEN, "Loose leaf")), "ValidationError", "description", "admin"),
    MutationCase("changeProductPrice productId", CHANGE_PRICE, {"input": {"productId": (BROKEN, "<product>"), "priceCents": 5}}, "NotFoundError", None, "admin"),
    MutationCase("restockProduct productId", RESTOCK, {"input": {"productId": (BROKEN, "<product>"), "quantity": 1}}, "NotFoundError", None, "admin"),
    MutationCase("placeOrder lines.productId", PLACE_ORDER, _order((BROKEN, "<product>")), "NotFoundError"),
    MutationCase("placeOrder idempotencyKey", PLACE_ORDER, _order(key=(BROKEN, "key-123")), "ValidationError", "idempotencyKey"),
    MutationCase("cancelOrder orderId", CANCEL_ORDER, {"input": {"orderId": (BROKEN, "<order>")}}, "NotFoundError"),
    MutationCase("shipOrder orderId", SHIP_ORDER, {"input": {"orderId": (BROKEN, "<order>")}}, "NotFoundError", None, "admin"),
]  # fmt: skip

# Query arguments: (case name, document with $v, a valid value for $v, token).
QUERY_CASES = [
    ("node id", "query($v: ID!) { node(id: $v) { id } }", "<product>", "none"),
    ("product id", "query($v: ID!) { product(id: $v) { id } }", "<product>", "none"),
    ("products search", "query($v: String) { products(search: $v) { edges { cursor } } }", "green tea", "none"),
    ("products after", "query($v: String) { products(after: $v) { edges { cursor } } }", "b3BhcXVl", "none"),
    ("order id", "query($v: ID!) { order(id: $v) { id } }", "<order>", "customer"),
    ("myOrders after", "query($v: String) { myOrders(after: $v) { edges { cursor } } }", "b3BhcXVl", "customer"),
    ("inventory after", "query($v: String) { inventory(after: $v) { edges { cursor } } }", "b3BhcXVl", "admin"),
]  # fmt: skip

SUBSCRIPTION_CASES = [
    ("orderUpdated id", "subscription($v: ID!) { orderUpdated(id: $v) { id } }", "<order>"),
    ("myOrdersUpdated afterToken", "subscription($v: String) { myOrdersUpdated(afterToken: $v) { id } }", "cG9zOjE"),
    ("productUpdated id", "subscription($v: ID) { productUpdated(id: $v) { id } }", "<product>"),
    ("productUpdated afterToken", "subscription($v: String) { productUpdated(afterToken: $v) { id } }", "cG9zOjE"),
]  # fmt: skip


@pytest_asyncio.fixture(scope="module")
async def world(api: Api, admin_token: str) -> World:
    customer = await sign_up(api, "Nul Owner")
    product = await new_product(api.client, admin_token, stock=50)
    placed = await place_order(api.client, customer.token, [(product["id"], 1)])
    assert placed["__typename"] == "OrderSuccess", placed
    return World(customer, admin_token, product["id"], placed["order"]["id"])


def headers_for(world: World, token: str) -> dict[str, str]:
    bearer = {"customer": world.customer.token, "admin": world.admin_token}.get(token)
    return {} if bearer is None else {"Authorization": f"Bearer {bearer}"}


async def write_store(engine: AsyncEngine) -> tuple[int, ...]:
    """Everything a request could have written."""
    async with engine.connect() as conn:
        counts = [
            int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
            for table in ("customers", "products", "orders", "idempotency_keys")
        ]
        stock = await conn.scalar(text("SELECT sum(stock + version) FROM products"))
    return (await event_count(engine), *counts, int(stock or 0))


def assert_no_internal_error(body: dict[str, Any]) -> None:
    assert "INTERNAL_SERVER_ERROR" not in error_codes(body), body


@pytest.mark.parametrize("character", CONTROL, ids=["NUL", "ESC"])
@pytest.mark.parametrize("case", MUTATION_CASES, ids=str)
async def test_a_control_character_in_mutation_input_is_refused_and_nothing_is_written(
    api: Api, engine: AsyncEngine, world: World, case: MutationCase, character: str
) -> None:
    before = await write_store(engine)

    body = await api.client.gql(
        case.document,
        fill(case.variables, world, character),
        headers=headers_for(world, case.token),
    )

    assert_no_internal_error(body)
    assert "errors" not in body, body
    (result,) = body["data"].values()
    assert result["__typename"] == case.typename, result
    if case.field is not None:
        assert result["field"] == case.field, result
        assert f"U+{ord(character):04X}" in result["message"], result
    assert await write_store(engine) == before


@pytest.mark.parametrize("character", CONTROL, ids=["NUL", "ESC"])
@pytest.mark.parametrize("literal", [False, True], ids=["variable", "literal"])
@pytest.mark.parametrize(
    ("name", "document", "valid", "token"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES]
)
async def test_a_control_character_in_a_query_argument_is_bad_user_input(
    api: Api, world: World, name: str, document: str, valid: str, token: str, literal: bool, character: str
) -> None:  # fmt: skip
    value = broken(fill(valid, world, character), character)
    variables: dict[str, Any] = {"v": value}
    if literal:  # the same value as a GraphQL string literal: JSON escapes are GraphQL's too
        document = document.split(") ", 1)[1].replace("$v", json.dumps(value))
        document, variables = "query " + document, {}

    body = await api.client.gql(document, variables, headers=headers_for(world, token))

    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body.get("data") is None, body
    assert f"U+{ord(character):04X}" in body["errors"][0]["message"]


@pytest.mark.parametrize("character", CONTROL, ids=["NUL", "ESC"])
@pytest.mark.parametrize(
    ("name", "document", "valid"), SUBSCRIPTION_CASES, ids=[c[0] for c in SUBSCRIPTION_CASES]
)
async def test_a_control_character_in_a_subscription_argument_is_bad_user_input(
    api: Api, world: World, name: str, document: str, valid: str, character: str
) -> None:  # fmt: skip
    value = broken(fill(valid, world, character), character)
    async with graphql_ws(api.base_url, TRANSPORT_WS, ws_auth(world.customer.token)) as ws:
        op_id = await ws.subscribe(document, {"v": value})
        errors = await ws.refusal(op_id)

    assert [error.get("extensions", {}).get("code") for error in errors] == ["BAD_USER_INPUT"]


async def test_multi_line_text_keeps_tab_and_line_breaks_where_a_field_allows_them(
    api: Api, world: World
) -> None:
    description = "Loose leaf.\n\tSteep 3 minutes.\r\nServe hot."
    ok = await api.client.gql(
        CREATE_PRODUCT,
        _product(description=description),
        headers=headers_for(world, "admin"),
    )
    assert ok["data"]["createProduct"]["product"]["description"] == description, ok

    one_line = await api.client.gql(
        CREATE_PRODUCT, _product(name="Green\ntea"), headers=headers_for(world, "admin")
    )
    result = one_line["data"]["createProduct"]
    assert (result["__typename"], result["field"]) == ("ValidationError", "name"), result
