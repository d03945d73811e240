"""Subscriptions over Server-Sent Events (the graphql-sse protocol) against the running server.

The same rules as the websockets (tests/e2e/test_subscriptions.py, tests/security/
test_websockets.py): the Authorization header names the caller, refusals carry the same
codes, limits and budgets hold, afterToken replays exactly what was missed, the stream
ends when its token expires, and a client that leaves stops its operation (its hub
listener goes). A test waits for the subscription's hub listener before it writes, as the
websocket tests make a round trip first.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.asgi import create_app
from app.settings import Settings
from reads.hub import ProjectionHub
from schema.auth import TokenService
from tests.conftest import Api, Customer
from tests.e2e.test_subscriptions import (
    SALES_DASHBOARD_UPDATED,
    mutate,
    new_product,
    order_state,
    projected,
)
from tests.pipeline import Pipeline
from tests.shop_api import MY_ORDERS_UPDATED, PRODUCT_UPDATED, codes, create_product, place_ok
from tests.sse_client import SseStream, sse, sse_headers
from tests.support import (
    CANCEL_ORDER,
    CHANGE_PRICE,
    free_port,
    graphql_ws,
    serving,
    start_server,
    token_position,
    ws_auth,
)
from writes.commands import Role

SHORT_TTL_S = 6
END_BUDGET_S = 15.0
WAIT_S = 30.0


def hub_of(app: Any) -> ProjectionHub:
    hub: ProjectionHub = app.state.dependencies.queries.hub
    return hub


@asynccontextmanager
async def listening(
    api: Api, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> AsyncIterator[SseStream]:
    """A stream whose subscription listens to the hub already (so a write now reaches it)."""
    hub = hub_of(api.app)
    before = await settled(api)
    async with sse(api.client.http, query, variables, token) as stream:
        async with asyncio.timeout(WAIT_S):
            await hub.until_listener_count(before + 1)
        yield stream


async def settled(api: Api) -> int:
    """Once the streams earlier tests closed have ended on the server too: the hub's
    listener count then (the subscriptions of this test start from it)."""
    async with asyncio.timeout(WAIT_S):
        await api.app.state.event_streams.until_open_streams(0)
    return hub_of(api.app).listener_count


async def ended(stream: SseStream) -> list[str]:
    """The names of the events left before the server ended the stream."""
    return [event.event for event in await stream.rest(END_BUDGET_S)]


# Events arrive ------------------------------------------------------------------------


async def test_a_price_change_arrives_over_sse_as_a_next_event(
    api: Api, admin_token: str, read_side: Pipeline
) -> None:
    product = await new_product(api, admin_token, read_side, stock=5)
    async with listening(api, PRODUCT_UPDATED, {"id": product["id"]}) as stream:
        changed = await mutate(
            api, CHANGE_PRICE, {"productId": product["id"], "priceCents": 777}, admin_token
        )
        pushed = (await stream.data())["productUpdated"]
        assert pushed["id"] == product["id"]
        assert pushed["priceCents"] == 777
        assert pushed["version"] == changed["product"]["version"]


async def test_a_subscription_sent_with_get_streams_too(
    api: Api, customer: Customer, admin_token: str, read_side: Pipeline
) -> None:
    product = await create_product(api, admin_token, stock=5)
    hub = hub_of(api.app)
    before = await settled(api)
    async with sse(api.client.http, MY_ORDERS_UPDATED, {}, customer.token, method="GET") as stream:
        async with asyncio.timeout(WAIT_S):
            await hub.until_listener_count(before + 1)
        placed = await place_ok(api, customer.token, product["id"])
        assert order_state(await stream.data()) == (placed["order"]["id"], "PLACED", 1)


async def test_a_query_and_a_mutation_stream_one_result_then_complete(
    api: Api, admin_token: str, engine: AsyncEngine
) -> None:
    async with sse(api.client.http, "{ apiVersion }") as stream:
        assert (await stream.data())["apiVersion"]
        assert await ended(stream) == ["complete"]

    create = "mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename } }"

    def product(sku: str) -> dict[str, Any]:
        return {"input": {"sku": sku, "name": "Mug", "priceCents": 5, "stock": 1}}

    sku = f"SSE-{uuid.uuid4().hex[:8]}"
    variables = product(sku)
    async with sse(api.client.http, create, variables, admin_token) as stream:
        assert (await stream.data())["createProduct"]["__typename"] == "ProductSuccess"
        assert await ended(stream) == ["complete"]

    # No mutation over GET (GraphQL over HTTP): refused in the stream, nothing written.
    variables = product(sku + "-GET")
    async with sse(api.client.http, create, variables, admin_token, method="GET") as stream:
        refused = await stream.next()
        assert codes(refused["errors"]) == ["BAD_REQUEST"], refused
        assert "mutations are not allowed" in refused["errors"][0]["message"]
        assert await ended(stream) == ["complete"]
    async with engine.connect() as conn:
        written = await conn.scalar(
            text("SELECT count(*) FROM products WHERE sku = :sku"),
            {"sku": variables["input"]["sku"]},
        )
    assert written == 0


# Auth and limits: the websocket's codes ----------------------------------------------


@pytest.mark.parametrize(
    "query", [MY_ORDERS_UPDATED, SALES_DASHBOARD_UPDATED], ids=["myOrders", "salesDashboard"]
)
async def test_subscriptions_that_need_a_token_refuse_anonymous_streams(
    api: Api, read_side: Pipeline, query: str
) -> None:
    async with sse(api.client.http, query) as stream:
        assert codes((await stream.next())["errors"]) == ["UNAUTHENTICATED"]
        assert await ended(stream) == ["complete"]


async def test_admin_subscriptions_are_forbidden_to_customers(
    api: Api, customer: Customer, read_side: Pipeline
) -> None:
    async with sse(api.client.http, SALES_DASHBOARD_UPDATED, token=customer.token) as stream:
        assert codes((await stream.next())["errors"]) == ["FORBIDDEN"]
        assert await ended(stream) == ["complete"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("garbage", "UNAUTHENTICATED"),
        ("expired", "UNAUTHENTICATED"),
        ("not-bearer", "UNAUTHENTICATED"),
        ("bad-consistency-token", "BAD_USER_INPUT"),
    ],
)
async def test_a_bad_token_refuses_the_stream_with_the_websocket_code(
    api: Api, settings: Settings, customer: Customer, case: str, code: str
) -> None:
    expired = TokenService(settings.jwt_secret, settings.jwt_algorithm, -60, settings.jwt_issuer)
    headers = {
        "garbage": {"authorization": "Bearer not-a-jwt"},
        "expired": {
            "authorization": "Bearer " + expired.issue(uuid.UUID(customer.id), Role.CUSTOMER.value)
        },
        "not-bearer": {"authorization": f"Basic {customer.token}"},
        "bad-consistency-token": {
            "authorization": f"Bearer {customer.token}",
            "x-consistency-token": "not-a-token",
        },
    }[case]
    hub = hub_of(api.app)
    before = await settled(api)
    async with sse(api.client.http, PRODUCT_UPDATED, headers=headers) as stream:
        assert codes((await stream.next())["errors"]) == [code]
        assert await ended(stream) == ["complete"]
    assert hub.listener_count == before  # nothing ran


async def test_document_limits_and_the_cost_budget_refuse_in_the_stream(api: Api) -> None:
    deep = "subscription { productUpdated { id " + "x { " * 12 + "y" + " }" * 12 + " } }"
    async with sse(api.client.http, deep) as stream:
        assert codes((await stream.next())["errors"]) == ["GRAPHQL_VALIDATION_FAILED"]
        assert await ended(stream) == ["complete"]

    pages = "query { " + " ".join(
        f"p{i}: products(first: 100) {{ edges {{ node {{ id }} }} }}" for i in range(8)
    )
    async with sse(api.client.http, pages + " }") as stream:
        refused = await stream.next()
        assert codes(refused["errors"]) == ["QUERY_TOO_COMPLEX"]
        assert refused["errors"][0]["extensions"]["budget"] == api.settings.query_budget_anonymous


# afterToken -------------------------------------------------------------------------


async def test_after_token_replays_exactly_what_was_missed_then_goes_live(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await create_product(api, admin_token, stock=50)
    seen = await place_ok(api, customer.token, product["id"])
    last_seen = seen["consistencyToken"]
    missed = [(await place_ok(api, customer.token, product["id"]))["order"] for _ in range(2)]
    cancelled = await mutate(api, CANCEL_ORDER, {"orderId": seen["order"]["id"]}, customer.token)
    assert token_position(cancelled["consistencyToken"]) > token_position(last_seen)
    await projected(read_side, cancelled)

    async with listening(api, MY_ORDERS_UPDATED, {"after": last_seen}, customer.token) as stream:
        replayed = [order_state(await stream.data()) for _ in range(3)]
        assert replayed == [
            (missed[0]["id"], "PLACED", 1),
            (missed[1]["id"], "PLACED", 1),
            (seen["order"]["id"], "CANCELLED", 2),
        ]
        live = (await place_ok(api, customer.token, product["id"]))["order"]
        assert order_state(await stream.data()) == (live["id"], "PLACED", 1)


# Ending -----------------------------------------------------------------------------


async def test_a_client_that_disconnects_stops_its_subscription(
    api: Api, admin_token: str, read_side: Pipeline
) -> None:
    hub = hub_of(api.app)
    streams = api.app.state.event_streams
    before = await settled(api)
    async with listening(api, PRODUCT_UPDATED) as stream:
        assert streams.open_streams == 1
        assert stream.response.status_code == 200
    # The client left: the server notices, stops the subscription and drops its listener.
    async with asyncio.timeout(WAIT_S):
        await hub.until_listener_count(before)
        await streams.until_open_streams(0)


async def test_the_stream_ends_when_its_token_expires(
    api: Api, settings: Settings, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await create_product(api, admin_token, stock=10)
    short_lived = TokenService(
        settings.jwt_secret, settings.jwt_algorithm, SHORT_TTL_S, settings.jwt_issuer
    ).issue(uuid.UUID(customer.id), Role.CUSTOMER.value)
    expires_at = jwt.decode(short_lived, options={"verify_signature": False})["exp"]
    hub = hub_of(api.app)
    before = await settled(api)

    async with listening(api, MY_ORDERS_UPDATED, token=short_lived) as stream:
        placed = await place_ok(api, customer.token, product["id"])
        assert order_state(await stream.data()) == (placed["order"]["id"], "PLACED", 1)

        budget = max(0.0, expires_at - time.time()) + END_BUDGET_S
        refusal = await stream.next(budget)
        assert time.time() >= expires_at - 0.5
        assert codes(refusal["errors"]) == ["UNAUTHENTICATED"]
        assert "expired" in refusal["errors"][0]["message"]
        assert await ended(stream) == ["complete"]
    async with asyncio.timeout(WAIT_S):
        await hub.until_listener_count(before)


async def test_server_shutdown_ends_open_streams_without_complete(settings: Settings) -> None:
    """uvicorn waits for every response to finish before it stops, and a stream never
    finishes by itself: ShopServer ends the app's streams first."""
    port = free_port()
    app = create_app(settings)
    server, serve = await start_server(app, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            async with sse(http, PRODUCT_UPDATED) as stream:
                async with asyncio.timeout(WAIT_S):
                    await hub_of(app).until_listener_count(1)
                server.should_exit = True
                assert await ended(stream) == []  # no complete: the client reconnects
            async with asyncio.timeout(WAIT_S):
                await asyncio.shield(serve)
    finally:
        server.should_exit = True
        await serve


async def test_an_idle_stream_gets_keep_alive_comments(settings: Settings) -> None:
    own = settings.model_copy(update={"sse_keep_alive_seconds": 0.2})
    port = free_port()
    async with (
        serving(create_app(own), port) as client,
        sse(client.http, PRODUCT_UPDATED) as stream,
    ):
        for _ in range(3):
            event = await stream.event(comments=True)
            assert event.event == ""
        assert stream.comments >= 3


# Caps: the websockets' -------------------------------------------------------------


async def test_streams_and_websockets_share_the_per_address_cap(settings: Settings) -> None:
    own = settings.model_copy(update={"ws_max_connections_per_address": 2})
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    async with serving(create_app(own), port) as client:
        async with (
            sse(client.http, PRODUCT_UPDATED),
            graphql_ws(base_url, "graphql-transport-ws", ws_auth()),
        ):
            refused = await client.http.post(
                "/graphql", json={"query": PRODUCT_UPDATED}, headers=sse_headers()
            )
            assert refused.status_code == 429, refused.text
            assert codes(refused.json()["errors"]) == ["TOO_MANY_CONNECTIONS"]
        # Both left: their places are free again.
        async with sse(client.http, "{ apiVersion }") as stream:
            assert (await stream.data())["apiVersion"]


# Plain HTTP ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_subscription_over_plain_http_names_the_streaming_transports(
    api: Api, method: str
) -> None:
    query = "subscription { productUpdated { id } }"
    if method == "POST":
        response = await api.client.http.post("/graphql", json={"query": query})
    else:
        response = await api.client.http.get(
            "/graphql", params={"query": query}, headers={"accept": "application/json"}
        )
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert codes(body["errors"]) == ["STREAMING_TRANSPORT_REQUIRED"], body
    assert "text/event-stream" in body["errors"][0]["message"]
    assert "websocket" in body["errors"][0]["message"]
    assert not body.get("data")


async def test_bad_sse_requests_get_json_errors(api: Api) -> None:
    http: httpx.AsyncClient = api.client.http
    not_json = await http.post(
        "/graphql",
        content=b"{nope",
        headers=sse_headers() | {"content-type": "application/json"},
    )
    assert not_json.status_code == 400
    assert codes(not_json.json()["errors"]) == ["BAD_REQUEST"]
    no_query = await http.post("/graphql", json={"variables": {}}, headers=sse_headers())
    assert no_query.status_code == 400
    assert "query" in no_query.json()["errors"][0]["message"]
    padding = "x" * api.settings.max_body_bytes
    too_big = await http.post(
        "/graphql",
        json={"query": "{ apiVersion }", "variables": {"padding": padding}},
        headers=sse_headers(),
    )
    assert too_big.status_code == 413
    assert codes(too_big.json()["errors"]) == ["PAYLOAD_TOO_LARGE"]
    batch = await http.post("/graphql", json=[{"query": "{ apiVersion }"}], headers=sse_headers())
    assert batch.status_code == 400
    assert "batch" in batch.json()["errors"][0]["message"]
