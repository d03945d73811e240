"""Bad input is refused with a clear, coded error: never a 5xx, never a masked error,
and nothing is written.

Each row names what a careless or hostile client sends and what it must get back: a
typed member of the mutation's result union, or top-level errors with one code.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, NewType

import httpx
import pytest
import pytest_asyncio
import strawberry
from graphql import get_introspection_query
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.schema.config import StrawberryConfig

from app.settings import Settings
from schema.auth import TokenService
from schema.build import build_schema
from schema.errors import ApiError
from schema.extensions import ErrorCodes
from schema.limits import QueryLimits
from tests.conftest import Api, sign_up
from tests.support import (
    CANCEL_ORDER,
    CHANGE_PRICE,
    CREATE_PRODUCT,
    LOG_IN,
    PLACE_ORDER,
    PLACE_ORDER_RESULT,
    PRODUCT_RESULT,
    RESTOCK,
    SIGN_UP,
    event_count,
    new_product,
    product_row,
    unique,
)
from writes.errors import Unauthenticated

CLEAR_CODES = {
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "PAYLOAD_TOO_LARGE",
    # HTTP-level refusals (app/graphql_http/refusals.py)
    "BAD_REQUEST",
    "BATCHING_DISABLED",
    "METHOD_NOT_ALLOWED",
    "UNSUPPORTED_MEDIA_TYPE",
}

PRODUCT = "<product>"  # replaced by the id of a product with stock
UNIQUE = "<unique>"  # replaced by a fresh name, so only the broken field is wrong
TEN_KB = "x" * 10 * 1024
INT_32_OVERFLOW = 2**31
UNSAFE_INTEGER = 2**53 + 1
TOO_MANY_LINES = 51


@dataclass(frozen=True)
class Typed:
    """A result-union member (and the field a ValidationError names)."""

    typename: str
    field: str | None = None


@dataclass(frozen=True)
class Coded:
    """Top-level errors, all with this extensions.code, and no data."""

    code: str


PARSE_FAILED = Coded("GRAPHQL_PARSE_FAILED")
VALIDATION_FAILED = Coded("GRAPHQL_VALIDATION_FAILED")
BAD_USER_INPUT = Coded("BAD_USER_INPUT")
UNAUTHENTICATED = Coded("UNAUTHENTICATED")
NOT_FOUND = Typed("NotFoundError")


def invalid(field: str) -> Typed:
    return Typed("ValidationError", field)


@dataclass(frozen=True)
class World:
    product_id: str
    authorization: dict[str, str | None]  # token kind -> Authorization header
    settings: Settings


Document = str | Callable[[Settings], str]


@dataclass(frozen=True)
class Case:
    name: str
    document: Document
    variables: dict[str, Any] | None
    expect: Typed | Coded
    token: str = "customer"  # a key of World.authorization
    operation: str | None = None  # the operation to run, in a document with several

    def __str__(self) -> str:
        return self.name


# --- building requests ---------------------------------------------------------------


def line(product_id: Any = PRODUCT, quantity: Any = 1) -> dict[str, Any]:
    return {"productId": product_id, "quantity": quantity}


def order(*lines: Any, key: Any = None) -> dict[str, Any]:
    return {"input": {"lines": list(lines), "idempotencyKey": key}}


def price(price_cents: Any, **extra: Any) -> dict[str, Any]:
    return {"input": {"productId": PRODUCT, "priceCents": price_cents, **extra}}


def product_input(**fields: Any) -> dict[str, Any]:
    return {"input": {"sku": UNIQUE, "name": "Tea", "priceCents": 100, "stock": 1, **fields}}


def sign_up_input(**fields: Any) -> dict[str, Any]:
    return {
        "input": {"email": f"{UNIQUE}@example.com", "name": "Val", "password": "long-enough-pw"}
        | fields
    }


def place_literal(input_literal: str) -> str:
    return f"mutation {{ placeOrder(input: {input_literal}) {{ {PLACE_ORDER_RESULT} }} }}"


def one_line_literal(quantity: str) -> str:
    return place_literal(f'{{lines: [{{productId: "{PRODUCT}", quantity: {quantity}}}]}}')


def price_literal(price_cents: str) -> str:
    return (
        f'mutation {{ changeProductPrice(input: {{productId: "{PRODUCT}", '
        f"priceCents: {price_cents}}}) {{ {PRODUCT_RESULT} }} }}"
    )


VALID_ORDER = f'{{lines: [{{productId: "{PRODUCT}", quantity: 1}}]}}'


def too_many_tokens(settings: Settings) -> str:
    """A valid order whose selection pads the document past the token limit (with short
    tokens, so the text stays within the character limit, which is checked first)."""
    padding = " id" * settings.max_query_tokens
    assert len(padding) < settings.max_query_characters
    return f"mutation {{ placeOrder(input: {VALID_ORDER}) {{ ... on OrderSuccess {{ order {{ id{padding} }} }} }} }}"


def too_many_aliases(settings: Settings) -> str:
    orders = " ".join(
        f"order{n}: placeOrder(input: {VALID_ORDER}) {{ __typename }}"
        for n in range(settings.max_query_aliases + 1)
    )
    return f"mutation {{ {orders} }}"


# Introspection nests without end: __Type.fields -> __Field.type -> __Type.ofType -> ...
# (the API's own types nest a few levels only: test_max_query_depth_is_enforced covers
# them). Starting from a scalar keeps the query cheap should a broken limit let it run.
# It goes well past max_query_depth: GraphiQL's own introspection query is 14 deep, so a
# limit may allow introspection more depth than the API's own types.
NESTING = [("__Type", "fields"), ("__Field", "type"), ("__Type", "ofType")]


def too_deep(settings: Settings) -> str:
    """__type(name: "String") { fields { type { ofType { fields { type { ofType ..."""
    levels = 3 * settings.max_query_depth
    path = [NESTING[n % 3][1] for n in range(levels)]
    return '{ __type(name: "String") { ' + " { ".join(path) + " { name" + " }" * levels + " } }"


def too_deep_in_fragments_beside_an_order(settings: Settings) -> str:
    """The same depth spelled with nested fragments, in a document whose mutation is fine."""
    levels = 3 * settings.max_query_depth
    fragments = [
        f"fragment F{n} on {on} {{ {field} {{ ...F{n + 1} }} }}"
        for n, (on, field) in ((n, NESTING[n % 3]) for n in range(levels))
    ]
    fragments.append(f"fragment F{levels} on {NESTING[levels % 3][0]} {{ name }}")
    return (
        f"mutation Place {{ placeOrder(input: {VALID_ORDER}) {{ __typename }} }} "
        'query Deep { __type(name: "String") { ...F0 } } ' + " ".join(fragments)
    )


NESTED_LIST = "[" * 400 + "]" * 400


CASES = [
    # Malformed ids name nothing.
    Case("placeOrder: malformed productId", PLACE_ORDER, order(line("not-a-uuid")), NOT_FOUND),
    Case("placeOrder: uuid with junk", PLACE_ORDER, order(line(PRODUCT + "x")), NOT_FOUND),
    Case("placeOrder: empty productId", PLACE_ORDER, order(line("")), NOT_FOUND),
    Case("placeOrder: numeric productId", PLACE_ORDER, order(line(12345)), NOT_FOUND),
    Case("placeOrder: 10 KB productId", PLACE_ORDER, order(line(TEN_KB)), NOT_FOUND),
    Case("placeOrder: float productId", PLACE_ORDER, order(line(1.5)), BAD_USER_INPUT),
    Case("cancelOrder: malformed orderId", CANCEL_ORDER, {"input": {"orderId": "x"}}, NOT_FOUND),
    Case("changeProductPrice: malformed id", CHANGE_PRICE, {"input": {"productId": "1", "priceCents": 5}}, NOT_FOUND, "admin"),
    Case("restockProduct: malformed id", RESTOCK, {"input": {"productId": "zz", "quantity": 1}}, NOT_FOUND, "admin"),
    # Quantities: GraphQL Int is 32-bit; the rules allow 1-1000.
    Case("quantity -1", PLACE_ORDER, order(line(quantity=-1)), invalid("lines[0].quantity")),
    Case("quantity -1 literal", one_line_literal("-1"), None, invalid("lines[0].quantity")),
    Case("quantity 2^31", PLACE_ORDER, order(line(quantity=INT_32_OVERFLOW)), BAD_USER_INPUT),
    Case("quantity 2^31 literal", one_line_literal(str(INT_32_OVERFLOW)), None, VALIDATION_FAILED),
    Case("quantity 2^53+1", PLACE_ORDER, order(line(quantity=UNSAFE_INTEGER)), BAD_USER_INPUT),
    Case("quantity 2^53+1 literal", one_line_literal(str(UNSAFE_INTEGER)), None, VALIDATION_FAILED),
    Case("quantity 1.5", PLACE_ORDER, order(line(quantity=1.5)), BAD_USER_INPUT),
    Case("quantity '1'", PLACE_ORDER, order(line(quantity="1")), BAD_USER_INPUT),
    Case("quantity '1' literal", one_line_literal('"1"'), None, VALIDATION_FAILED),
    Case("quantity true", PLACE_ORDER, order(line(quantity=True)), BAD_USER_INPUT),
    Case("quantity null", PLACE_ORDER, order(line(quantity=None)), BAD_USER_INPUT),
    Case("quantity null literal", one_line_literal("null"), None, VALIDATION_FAILED),
    # Money is Cents: a non-negative integer, exact up to 2^53; the rules cap it at 10^9.
    Case("priceCents -5", CHANGE_PRICE, price(-5), BAD_USER_INPUT, "admin"),
    Case("priceCents -5 literal", price_literal("-5"), None, VALIDATION_FAILED, "admin"),
    Case("priceCents 2^53", CHANGE_PRICE, price(2**53), BAD_USER_INPUT, "admin"),
    Case("priceCents 2^53 literal", price_literal(str(2**53)), None, VALIDATION_FAILED, "admin"),
    Case("priceCents 1.5", CHANGE_PRICE, price(1.5), BAD_USER_INPUT, "admin"),
    Case("priceCents 1.5 literal", price_literal("1.5"), None, VALIDATION_FAILED, "admin"),
    Case("priceCents '12'", CHANGE_PRICE, price("12"), BAD_USER_INPUT, "admin"),
    Case("priceCents '12' literal", price_literal('"12"'), None, VALIDATION_FAILED, "admin"),
    Case("priceCents 10^9+1", CHANGE_PRICE, price(10**9 + 1), invalid("priceCents"), "admin"),
    Case("expectedVersion 2^31", CHANGE_PRICE, price(5, expectedVersion=INT_32_OVERFLOW), BAD_USER_INPUT, "admin"),
    Case("createProduct: priceCents -5", CREATE_PRODUCT, product_input(priceCents=-5), BAD_USER_INPUT, "admin"),
    Case("createProduct: stock -1", CREATE_PRODUCT, product_input(stock=-1), invalid("stock"), "admin"),
    Case("createProduct: stock 2^31", CREATE_PRODUCT, product_input(stock=INT_32_OVERFLOW), BAD_USER_INPUT, "admin"),
    Case("restock -1", RESTOCK, {"input": {"productId": PRODUCT, "quantity": -1}}, invalid("quantity"), "admin"),
    Case("restock 2^31", RESTOCK, {"input": {"productId": PRODUCT, "quantity": INT_32_OVERFLOW}}, BAD_USER_INPUT, "admin"),
    # An order has 1-50 lines (the count is checked before the products exist).
    Case("no lines", PLACE_ORDER, order(), invalid("lines")),
    Case("51 lines", PLACE_ORDER, order(*(line(str(uuid.uuid4())) for _ in range(TOO_MANY_LINES))), invalid("lines")),
    # 10 KB in every string input.
    Case("signUp: 10 KB email", SIGN_UP, sign_up_input(email=TEN_KB + "@example.com"), invalid("email"), "none"),
    Case("signUp: 10 KB name", SIGN_UP, sign_up_input(name=TEN_KB), invalid("name"), "none"),
    Case("signUp: 10 KB password", SIGN_UP, sign_up_input(password=TEN_KB), invalid("password"), "none"),
    Case("logIn: 10 KB email", LOG_IN, {"input": {"email": TEN_KB, "password": "long-enough-pw"}}, Typed("InvalidCredentialsError"), "none"),
    Case("logIn: 10 KB password", LOG_IN, {"input": {"email": "a@example.com", "password": TEN_KB}}, Typed("InvalidCredentialsError"), "none"),
    Case("createProduct: 10 KB sku", CREATE_PRODUCT, product_input(sku=TEN_KB), invalid("sku"), "admin"),
    Case("createProduct: 10 KB name", CREATE_PRODUCT, product_input(name=TEN_KB), invalid("name"), "admin"),
    Case("createProduct: 10 KB description", CREATE_PRODUCT, product_input(description=TEN_KB), invalid("description"), "admin"),
    Case("placeOrder: 10 KB idempotencyKey", PLACE_ORDER, order(line(), key=TEN_KB), invalid("idempotencyKey")),
    # Missing required fields and wrong types.
    Case("no variables at all", PLACE_ORDER, None, BAD_USER_INPUT),
    Case("line without quantity", PLACE_ORDER, {"input": {"lines": [{"productId": PRODUCT}]}}, BAD_USER_INPUT),
    Case("line without productId literal", place_literal("{lines: [{quantity: 1}]}"), None, VALIDATION_FAILED),
    Case("no input argument", "mutation { placeOrder { __typename } }", None, VALIDATION_FAILED),
    Case("signUp without password", SIGN_UP, {"input": {"email": f"{UNIQUE}@example.com", "name": "Val"}}, BAD_USER_INPUT, "none"),
    Case("object for a String", SIGN_UP, sign_up_input(email={"$ne": None}), BAD_USER_INPUT, "none"),
    Case("object for a String literal", 'mutation { signUp(input: {email: {a: 1}, name: "V", password: "long-enough-pw"}) { __typename } }', None, VALIDATION_FAILED, "none"),
    Case("list for a String", PLACE_ORDER, order(line(), key=["a"]), BAD_USER_INPUT),
    Case("null for non-null lines", PLACE_ORDER, {"input": {"lines": None}}, BAD_USER_INPUT),
    Case("list for the input object", PLACE_ORDER, {"input": [line()]}, BAD_USER_INPUT),
    Case("unknown input field", PLACE_ORDER, {"input": {"lines": [line()], "coupon": "FREE"}}, BAD_USER_INPUT),
    Case("unknown argument literal", f"mutation {{ placeOrder(input: {VALID_ORDER}, coupon: 1) {{ __typename }} }}", None, VALIDATION_FAILED),
    Case("undefined variable", f"mutation {{ placeOrder(input: $input) {{ {PLACE_ORDER_RESULT} }} }}", order(line()), VALIDATION_FAILED),
    Case("variable of the wrong type", f"mutation($q: String) {{ placeOrder(input: {{lines: [{{productId: \"{PRODUCT}\", quantity: $q}}]}}) {{ __typename }} }}", {"q": "1"}, VALIDATION_FAILED),
    # Documents: syntax, unknown fields and the query limits.
    Case("syntax error", f"mutation {{ placeOrder(input: {VALID_ORDER}) {{ __typename }}", None, PARSE_FAILED),
    Case("unknown field", f"mutation {{ placeOrder(input: {VALID_ORDER}) {{ __typename discount }} }}", None, VALIDATION_FAILED),
    Case("too many tokens", too_many_tokens, None, PARSE_FAILED),
    Case("too many aliases", too_many_aliases, None, VALIDATION_FAILED),
    Case("introspection nested too deep", too_deep, None, VALIDATION_FAILED),
    Case("introspection nested too deep in fragments", too_deep_in_fragments_beside_an_order, None, VALIDATION_FAILED, operation="Place"),
    Case("list literal nested too deeply", place_literal(f"{{lines: {NESTED_LIST}}}"), None, PARSE_FAILED),
    # Bearer tokens.
    Case("no token", PLACE_ORDER, order(line()), UNAUTHENTICATED, "none"),
    Case("not a JWT", PLACE_ORDER, order(line()), UNAUTHENTICATED, "garbage"),
    Case("not a bearer scheme", PLACE_ORDER, order(line()), UNAUTHENTICATED, "basic"),
    Case("10 KB bearer token", PLACE_ORDER, order(line()), UNAUTHENTICATED, "huge"),
    Case("expired token", PLACE_ORDER, order(line()), UNAUTHENTICATED, "expired"),
    Case("token signed with another secret", PLACE_ORDER, order(line()), UNAUTHENTICATED, "wrong-secret"),
    Case("unsigned token (alg none)", PLACE_ORDER, order(line()), UNAUTHENTICATED, "alg-none"),
    Case("tampered token claiming ADMIN", CREATE_PRODUCT, product_input(), UNAUTHENTICATED, "tampered"),
    Case("token of an unknown customer", PLACE_ORDER, order(line()), UNAUTHENTICATED, "ghost"),
    Case("unknown customer with a key", PLACE_ORDER, order(line(), key=UNIQUE), UNAUTHENTICATED, "ghost"),
    Case("customer managing products", CREATE_PRODUCT, product_input(), Coded("FORBIDDEN")),
]  # fmt: skip


# --- requests that never reach GraphQL execution ----------------------------------------


@dataclass(frozen=True)
class RawCase:
    name: str
    request: Callable[[World], dict[str, Any]]  # keyword arguments for httpx's request()
    status: int | tuple[int, ...]
    code: str | None = None  # the extensions.code of a JSON answer

    def __str__(self) -> str:
        return self.name


def valid_order_body(world: World) -> dict[str, Any]:
    """A request body that would place an order, were it not for what a case does to it."""
    return {"query": PLACE_ORDER, "variables": substitute(order(line()), world)}


def post(content: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"method": "POST", "content": content, "headers": {"content-type": content_type}}


async def in_chunks(body: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    """A streamed body: sent chunked, without Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def oversized(world: World) -> bytes:
    padding = " " * world.settings.max_body_bytes
    return json.dumps(valid_order_body(world)).encode()[:-1] + padding.encode() + b"}"


def nan_quantity(world: World) -> bytes:
    body = json.dumps(valid_order_body(world))
    return body.replace('"quantity": 1', '"quantity": NaN').encode()


RAW_CASES = [
    RawCase("invalid JSON", lambda w: post(json.dumps(valid_order_body(w)).encode()[:-2]), 400, "BAD_REQUEST"),
    RawCase("invalid UTF-8", lambda w: post(b'{"query": "\xff\xfe"}'), 400, "BAD_REQUEST"),
    RawCase("a JSON string body", lambda w: post(b'"mutation { placeOrder }"'), 400, "BAD_REQUEST"),
    RawCase("a JSON null body", lambda w: post(b"null"), 400, "BAD_REQUEST"),
    RawCase("no query", lambda w: post(json.dumps({"variables": {}}).encode()), 400, "BAD_REQUEST"),
    RawCase("query not a string", lambda w: post(b'{"query": 1}'), 400, "BAD_REQUEST"),
    RawCase("variables not an object", lambda w: post(b'{"query": "{ __typename }", "variables": [1]}'), 400, "BAD_REQUEST"),
    RawCase("NaN quantity (not JSON)", lambda w: post(nan_quantity(w)), 400, "BAD_REQUEST"),
    RawCase("text/plain body", lambda w: post(json.dumps(valid_order_body(w)).encode(), "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    RawCase("a batch, batching being off", lambda w: post(json.dumps([valid_order_body(w)]).encode()), 400, "BATCHING_DISABLED"),
    RawCase("a mutation over GET", lambda w: {"method": "GET", "params": {"query": valid_order_body(w)["query"], "variables": json.dumps(valid_order_body(w)["variables"])}}, 405, "METHOD_NOT_ALLOWED"),
    RawCase("body over the limit", lambda w: post(oversized(w)), 413, "PAYLOAD_TOO_LARGE"),
    RawCase("streamed body over the limit", lambda w: post(oversized(w)) | {"content": in_chunks(oversized(w))}, 413, "PAYLOAD_TOO_LARGE"),
]  # fmt: skip


# --- fixtures and checks -------------------------------------------------------------


def substitute(value: Any, world: World) -> Any:
    if isinstance(value, str):
        return value.replace(PRODUCT, world.product_id).replace(UNIQUE, unique("bad-input"))
    if isinstance(value, dict):
        return {k: substitute(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, world) for v in value]
    return value


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def bearer_tokens(
    settings: Settings, customer_token: str, admin_token: str
) -> dict[str, str | None]:
    signing = TokenService(
        settings.jwt_secret, settings.jwt_algorithm, settings.jwt_ttl_seconds, settings.jwt_issuer
    )
    expired = TokenService(settings.jwt_secret, settings.jwt_algorithm, -60, settings.jwt_issuer)
    other_secret = TokenService("s" * 48, settings.jwt_algorithm, 3600, settings.jwt_issuer)
    header, payload, signature = customer_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    customer_id = uuid.UUID(claims["sub"])
    tampered = ".".join([header, _b64(claims | {"role": "ADMIN"}), signature])
    unsigned = ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""])
    tokens = {
        "customer": customer_token,
        "admin": admin_token,
        "expired": expired.issue(customer_id, "CUSTOMER"),
        "wrong-secret": other_secret.issue(customer_id, "CUSTOMER"),
        "alg-none": unsigned,
        "tampered": tampered,
        "ghost": signing.issue(uuid.uuid4(), "CUSTOMER"),
        "garbage": "not.a.jwt",
        "huge": TEN_KB,
    }
    headers: dict[str, str | None] = {kind: f"Bearer {token}" for kind, token in tokens.items()}
    return headers | {"none": None, "basic": "Basic dXNlcjpwYXNzd29yZA=="}


@pytest_asyncio.fixture(scope="module")
async def world(api: Api, admin_token: str) -> World:
    product = await new_product(api.client, admin_token, stock=10)
    customer = await sign_up(api, "Bo Badinput")
    return World(
        product["id"], bearer_tokens(api.settings, customer.token, admin_token), api.settings
    )


async def write_store(engine: AsyncEngine, world: World) -> tuple[Any, ...]:
    """Everything a request could have written."""
    async with engine.connect() as conn:
        orders = await conn.scalar(text("SELECT count(*) FROM orders"))
        keys = await conn.scalar(text("SELECT count(*) FROM idempotency_keys"))
    return await event_count(engine), orders, keys, await product_row(engine, world.product_id)


def outcome(body: dict[str, Any]) -> Typed | Coded:
    if body.get("errors"):
        codes = {error.get("extensions", {}).get("code") for error in body["errors"]}
        assert not body.get("data"), body
        assert len(codes) == 1, body
        return Coded(codes.pop())
    (result,) = body["data"].values()
    return Typed(str(result.get("__typename")), result.get("field"))


def assert_clear(response: httpx.Response) -> None:
    """Never 5xx; a JSON answer's errors all carry a code a client can act on."""
    assert response.status_code < 500, response.text[:500]
    if response.headers.get("content-type", "").startswith("application/json"):
        for error in response.json().get("errors", []):
            assert error.get("extensions", {}).get("code") in CLEAR_CODES, error


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bad_input_gets_a_clear_error_and_writes_nothing(
    api: Api, engine: AsyncEngine, world: World, case: Case
) -> None:
    document = case.document(world.settings) if callable(case.document) else case.document
    authorization = world.authorization[case.token]
    headers = {} if authorization is None else {"Authorization": authorization}
    before = await write_store(engine, world)

    response = await api.client.http.post(
        "/graphql",
        json={
            "query": substitute(document, world),
            "variables": substitute(case.variables, world),
            "operationName": case.operation,
        },
        headers=headers,
    )

    assert_clear(response)
    assert response.status_code == 200
    assert outcome(response.json()) == case.expect, response.text[:1000]
    assert await write_store(engine, world) == before


@pytest.mark.parametrize("case", RAW_CASES, ids=str)
async def test_a_malformed_request_gets_a_clear_error_and_writes_nothing(
    api: Api, engine: AsyncEngine, world: World, case: RawCase
) -> None:
    before = await write_store(engine, world)

    response = await api.client.http.request(url="/graphql", **case.request(world))

    assert_clear(response)
    allowed = case.status if isinstance(case.status, tuple) else (case.status,)
    assert response.status_code in allowed, response.text[:500]
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    if case.code is not None:
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == [case.code]
    assert await write_store(engine, world) == before


# --- masking of what is not the client's fault ----------------------------------------


Picky = NewType("Picky", int)  # refuses every value, as a scalar should: ValueError
Buggy = NewType("Buggy", int)  # whose parser fails on a bug of its own


def _refuse_cents(value: object) -> int:
    raise ValueError(f"not a number of cents: {value!r}")


def _broken_parser(value: object) -> int:
    raise KeyError("a bug in a scalar")


@strawberry.type
class _Query:
    @strawberry.field
    def explode(self) -> int:
        raise RuntimeError("connection string postgres://secret@db")

    @strawberry.field
    def forbidden(self) -> int:
        raise ApiError("FORBIDDEN", "admins only")

    @strawberry.field
    def refuse(self, value: Picky) -> int:
        return 0

    @strawberry.field
    def crash(self, value: Buggy) -> int:
        return 0


TINY_SCHEMA = strawberry.Schema(
    query=_Query,
    extensions=[ErrorCodes],
    config=StrawberryConfig(
        scalar_map={
            Picky: strawberry.scalar(name="Picky", serialize=int, parse_value=_refuse_cents),
            Buggy: strawberry.scalar(name="Buggy", serialize=int, parse_value=_broken_parser),
        }
    ),
)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ explode }", None),
        ("query($v: Buggy!) { crash(value: $v) }", {"v": 1}),
    ],
    ids=["resolver raises", "scalar parser has a bug"],
)
async def test_an_unexpected_exception_is_masked_with_a_correlation_id(
    query: str, variables: dict[str, Any] | None
) -> None:
    context = SimpleNamespace(correlation_id="corr-123")

    result = await TINY_SCHEMA.execute(query, variables, context_value=context)

    assert result.errors is not None
    (error,) = result.errors
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR", "correlationId": "corr-123"}
    assert error.message == "Internal server error (reference corr-123)"


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ forbidden }", None, "FORBIDDEN"),
        ("query($v: Picky!) { refuse(value: $v) }", {"v": 1}, "BAD_USER_INPUT"),
        ("{ explode", None, "GRAPHQL_PARSE_FAILED"),
        ("{ nothing }", None, "GRAPHQL_VALIDATION_FAILED"),
    ],
    ids=["ApiError", "scalar refuses a value", "syntax error", "unknown field"],
)
async def test_expected_errors_keep_their_message_and_code(
    query: str, variables: dict[str, Any] | None, code: str
) -> None:
    result = await TINY_SCHEMA.execute(
        query, variables, context_value=SimpleNamespace(correlation_id="corr-123")
    )

    assert result.errors is not None
    (error,) = result.errors
    assert error.extensions == {"code": code}
    assert "Internal server error" not in error.message


class RefusingBus:
    """Counts the commands that reach it and refuses each as unauthenticated."""

    def __init__(self) -> None:
        self.commands: list[object] = []

    async def handle(self, command: object, meta: object) -> None:
        self.commands.append(command)
        raise Unauthenticated


# placeOrder > order > customer > id: three levels below the operation.
DEPTH_3_ORDER = (
    "mutation { placeOrder(input: {lines: []}) "
    "{ ... on OrderSuccess { order { customer { id } } } } }"
)


@pytest.mark.parametrize(
    ("max_depth", "code", "commands"),
    [(2, "GRAPHQL_VALIDATION_FAILED", 0), (3, "UNAUTHENTICATED", 1)],
)
async def test_max_query_depth_is_enforced(max_depth: int, code: str, commands: int) -> None:
    """The contract's own types nest too little to reach the default limit over HTTP."""
    bus = RefusingBus()
    context = SimpleNamespace(correlation_id="corr-1", actor=lambda: None, bus=bus)

    result = await build_schema(limits=QueryLimits(max_depth=max_depth)).execute(
        DEPTH_3_ORDER, context_value=context
    )

    assert [(error.extensions or {})["code"] for error in result.errors or []] == [code]
    assert len(bus.commands) == commands


async def test_graphiqls_introspection_query_is_not_too_deep(api: Api) -> None:
    """A depth limit must not lock GraphiQL out: its introspection query nests 14 deep."""
    assert api.settings.introspection_enabled  # tests run in development

    body = await api.client.gql(get_introspection_query(descriptions=True))

    assert "errors" not in body, body["errors"]
    assert body["data"]["__schema"]["mutationType"]["name"] == "Mutation"
