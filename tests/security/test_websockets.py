"""Hostile websocket clients, over real sockets in both sub-protocols (issue 8, part D).

A socket keeps the HTTP rules: its identity ends with its bearer token (closed 4403 at the
token's `exp`), frames are capped at MAX_BODY_BYTES (1009), each client address holds a
bounded number of sockets (1013) and each socket a bounded number of operations
(TOO_MANY_SUBSCRIPTIONS for the one over), and no frame crashes the handler: every
malformed one is answered by its protocol's rules.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import jwt
import orjson
import pytest
import pytest_asyncio
from websockets.exceptions import ConnectionClosed

from app.asgi import create_app
from app.settings import Settings
from schema.auth import TokenService
from tests.conftest import Api, Customer
from tests.pipeline import Pipeline
from tests.shop_api import MY_ORDERS_UPDATED, PRODUCT_UPDATED, codes, create_product, place_ok
from tests.support import (
    LEGACY_WS,
    TRANSPORT_WS,
    WS_PROTOCOLS,
    GraphQLWebSocket,
    free_port,
    graphql_ws,
    serving,
    ws_auth,
)
from writes.commands import Role

API_VERSION = "{ apiVersion }"
# Long enough for the socket to hear of one order before the token runs out, on a busy
# machine; the test then waits for the expiry itself.
SHORT_TTL_S = 6
# Generous: the close is scheduled for the token's `exp`; this only bounds a broken server.
CLOSE_BUDGET_S = 10.0
OPERATION_CAP = 2
CONNECTION_CAP = 3
UVICORN_DEFAULT_WS_MAX_SIZE = 16 * 1024 * 1024


@pytest_asyncio.fixture(scope="module")
async def capped(settings: Settings) -> AsyncIterator[str]:
    """An API process with a small operation cap, under a uvicorn left at its 16 MiB frame
    limit, so only the app itself refuses frames over MAX_BODY_BYTES: its base URL."""
    own = settings.model_copy(update={"ws_max_subscriptions_per_connection": OPERATION_CAP})
    port = free_port()
    async with serving(create_app(own), port, ws_max_size=UVICORN_DEFAULT_WS_MAX_SIZE):
        yield f"http://127.0.0.1:{port}"


async def answers_a_query(ws: GraphQLWebSocket) -> None:
    """The socket still runs operations: a query gets its data."""
    op_id = await ws.subscribe(API_VERSION)
    assert (await ws.data(op_id))["apiVersion"]
    assert (await ws.event(op_id)).kind == "complete"


async def close_code(ws: GraphQLWebSocket) -> int | None:
    return await ws.closed(CLOSE_BUDGET_S)


async def rest_of(ws: GraphQLWebSocket) -> list[dict[str, Any]]:
    """Every message the server sent before its close that nobody read yet."""
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(CLOSE_BUDGET_S):
        while True:
            try:
                raw = await ws.conn.recv()
            except ConnectionClosed:
                return messages
            messages.append(orjson.loads(raw))


# Identity expires with the token ----------------------------------------------------


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
async def test_a_socket_is_closed_4403_when_its_token_expires_and_hears_nothing_after(
    api: Api,
    settings: Settings,
    admin_token: str,
    customer: Customer,
    read_side: Pipeline,
    protocol: str,
) -> None:
    product = await create_product(api, admin_token, stock=10)
    short_lived = TokenService(
        settings.jwt_secret, settings.jwt_algorithm, SHORT_TTL_S, settings.jwt_issuer
    ).issue(uuid.UUID(customer.id), Role.CUSTOMER.value)
    expires_at = jwt.decode(short_lived, options={"verify_signature": False})["exp"]

    async with (
        graphql_ws(api.base_url, protocol, ws_auth(short_lived)) as expiring,
        graphql_ws(api.base_url, protocol, ws_auth(customer.token)) as control,
    ):
        expiring_op = await expiring.subscribe(MY_ORDERS_UPDATED)
        control_op = await control.subscribe(MY_ORDERS_UPDATED)
        await expiring.sync()
        await control.sync()

        before = (await place_ok(api, customer.token, product["id"]))["order"]
        heard = await expiring.data(expiring_op)
        assert heard["myOrdersUpdated"]["id"] == before["id"]
        assert (await control.data(control_op))["myOrdersUpdated"]["id"] == before["id"]

        budget = max(0.0, expires_at - time.time()) + CLOSE_BUDGET_S
        assert await expiring.closed(budget) == 4403
        closed_at = time.time()
        assert "expired" in (expiring.conn.close_reason or "")
        # Not before the token's own expiry (0.5 s for the wall clock against the timer's).
        assert closed_at >= expires_at - 0.5

        # The next change reaches a live subscriber of the same customer, not the closed one.
        after = (await place_ok(api, customer.token, product["id"]))["order"]
        assert (await control.data(control_op))["myOrdersUpdated"]["id"] == after["id"]
        unread = await rest_of(expiring)
        assert [m["type"] for m in unread if m["type"] in ("next", "data")] == [], unread
        with pytest.raises(ConnectionClosed):
            await expiring.subscribe(MY_ORDERS_UPDATED)


# Frame size -------------------------------------------------------------------------


def subscribe_frame(protocol: str, size: int) -> str:
    """A `{ apiVersion }` operation message of exactly `size` bytes (padded in an unused
    variable, which the operation ignores)."""
    kind = "start" if protocol == LEGACY_WS else "subscribe"

    def frame(padding: str) -> str:
        payload = {"query": API_VERSION, "variables": {"padding": padding}}
        return orjson.dumps({"type": kind, "id": "big", "payload": payload}).decode()

    bare = len(frame(""))
    padded = frame("x" * (size - bare))
    assert len(padded.encode()) == size
    return padded


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
@pytest.mark.parametrize("server", ["uvicorn limit", "app limit"])
async def test_a_frame_over_the_body_limit_closes_1009_and_one_at_the_limit_works(
    api: Api, admin_token: str, capped: str, protocol: str, server: str
) -> None:
    base_url = api.base_url if server == "uvicorn limit" else capped
    limit = api.settings.max_body_bytes
    async with graphql_ws(base_url, protocol, ws_auth(admin_token)) as ws:
        await ws.conn.send(subscribe_frame(protocol, limit))
        assert (await ws.data("big"))["apiVersion"]

        await ws.conn.send(subscribe_frame(protocol, limit + 1))
        assert await close_code(ws) == 1009


# Connections per client address -----------------------------------------------------


async def admitted(base_url: str, protocol: str, stack: AsyncExitStack) -> GraphQLWebSocket:
    ws = await stack.enter_async_context(graphql_ws(base_url, protocol, ack=False))
    reply = await ws.init({})
    assert reply["type"] == "connection_ack", reply
    return ws


async def refused(base_url: str, protocol: str) -> int | None:
    async with graphql_ws(base_url, protocol, ack=False) as ws:
        return await close_code(ws)


async def test_the_connection_over_the_cap_from_one_address_is_refused_1013(
    settings: Settings,
) -> None:
    own = settings.model_copy(update={"ws_max_connections_per_address": CONNECTION_CAP})
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    async with serving(create_app(own), port), AsyncExitStack() as stack:
        open_sockets = [
            await admitted(base_url, WS_PROTOCOLS[index % 2], stack)
            for index in range(CONNECTION_CAP)
        ]
        for protocol in WS_PROTOCOLS:
            assert await refused(base_url, protocol) == 1013
        for ws in open_sockets:  # the refusals cost the admitted sockets nothing
            await answers_a_query(ws)

        # A socket that leaves frees its place, and only its place.
        await open_sockets.pop().conn.close()
        replacement = await admitted_once_released(base_url, stack)
        await answers_a_query(replacement)
        assert await refused(base_url, TRANSPORT_WS) == 1013


async def admitted_once_released(base_url: str, stack: AsyncExitStack) -> GraphQLWebSocket:
    """A new socket, once the server has finished with the one the client just closed
    (it hears of the close before the handler ends): retried while it answers 1013."""
    async with asyncio.timeout(CLOSE_BUDGET_S):
        while True:
            ws = await stack.enter_async_context(graphql_ws(base_url, TRANSPORT_WS, ack=False))
            try:
                reply = await ws.init({})
            except ConnectionClosed:
                assert ws.conn.close_code == 1013
                continue
            assert reply["type"] == "connection_ack", reply
            return ws


# Operations per socket --------------------------------------------------------------


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
async def test_the_operation_over_the_cap_is_refused_and_the_socket_stays_open(
    capped: str, admin_token: str, protocol: str
) -> None:
    async with graphql_ws(capped, protocol, ws_auth(admin_token)) as ws:
        running = [await ws.subscribe(PRODUCT_UPDATED) for _ in range(OPERATION_CAP)]
        await ws.sync()
        over = await ws.subscribe(PRODUCT_UPDATED)
        event = await ws.event(over)
        assert event.kind == "error", event
        assert codes(event.errors) == ["TOO_MANY_SUBSCRIPTIONS"], event.errors
        assert "WS_MAX_SUBSCRIPTIONS_PER_CONNECTION" in event.errors[0]["message"]

        await ws.stop(running[0])
        if protocol == LEGACY_WS:  # legacy graphql-ws answers a stop with `complete`
            assert (await ws.event(running[0])).kind == "complete"
        await answers_a_query(ws)


# Malformed frames -------------------------------------------------------------------

BINARY = b'{"type": "ping"}'
NOT_JSON: list[str | bytes] = ["not json", "{", "[" * 50_000, '{"type": "ping"', BINARY]
UNREADABLE = ["[]", '[{"type": "ping"}]', '"ping"', "42", "null", "{}", '{"type": 7}']
BAD_OPERATIONS = [
    '{"type": "subscribe", "payload": {"query": "{ apiVersion }"}}',
    '{"type": "subscribe", "id": "1"}',
    '{"type": "subscribe", "id": "1", "payload": "{ apiVersion }"}',
    '{"type": "subscribe", "id": ["1"], "payload": {"query": "{ apiVersion }"}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": 1}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ apiVersion }", "variables": []}}',
    '{"type": "complete"}',
    '{"type": "complete", "id": {}}',
    '{"type": "ping", "payload": []}',
    '{"type": "nope", "id": "1"}',
    '{"type": "connection_init", "payload": "Bearer x"}',
]


@pytest.mark.parametrize("frame", [*NOT_JSON, *UNREADABLE, *BAD_OPERATIONS])
async def test_graphql_transport_ws_closes_4400_on_every_malformed_frame(
    capped: str, frame: str | bytes
) -> None:
    async with graphql_ws(capped, TRANSPORT_WS, {}) as ws:
        await ws.conn.send(frame)
        assert await close_code(ws) == 4400
        assert ws.conn.close_reason


async def test_graphql_transport_ws_closes_4400_on_a_malformed_frame_before_init(
    capped: str,
) -> None:
    async with graphql_ws(capped, TRANSPORT_WS, ack=False) as ws:
        await ws.conn.send("[]")
        assert await close_code(ws) == 4400


LEGACY_CONNECTION_ERRORS: list[str | bytes] = [f for f in NOT_JSON if f is not BINARY]
LEGACY_CONNECTION_ERRORS += UNREADABLE
LEGACY_CONNECTION_ERRORS += [
    '{"type": "start", "payload": {"query": "{ apiVersion }"}}',
    '{"type": "start", "id": "", "payload": {"query": "{ apiVersion }"}}',
    '{"type": "stop"}',
    '{"type": "connection_init", "payload": {}}',  # a second one: refused, identity kept
]
LEGACY_OPERATION_ERRORS = [
    '{"type": "start", "id": "9"}',
    '{"type": "start", "id": "9", "payload": "{ apiVersion }"}',
    '{"type": "start", "id": "9", "payload": {"query": 5}}',
    '{"type": "start", "id": "9", "payload": {"query": "{ apiVersion }", "variables": 1}}',
    '{"type": "nope", "id": "9"}',
]


@pytest.mark.parametrize("frame", LEGACY_CONNECTION_ERRORS)
async def test_legacy_graphql_ws_answers_an_unreadable_frame_with_connection_error(
    capped: str, frame: str | bytes
) -> None:
    async with graphql_ws(capped, LEGACY_WS, {}) as ws:
        await ws.conn.send(frame)
        reply = await ws.receive(CLOSE_BUDGET_S)
        assert reply["type"] == "connection_error", reply
        assert reply["payload"]["extensions"]["code"] == "BAD_REQUEST", reply
        await answers_a_query(ws)


@pytest.mark.parametrize("frame", LEGACY_OPERATION_ERRORS)
async def test_legacy_graphql_ws_answers_a_bad_operation_with_an_error_for_its_id(
    capped: str, frame: str
) -> None:
    async with graphql_ws(capped, LEGACY_WS, {}) as ws:
        await ws.conn.send(frame)
        reply = await ws.receive(CLOSE_BUDGET_S)
        assert (reply["type"], reply.get("id")) == ("error", "9"), reply
        assert reply["payload"]["extensions"]["code"] == "BAD_REQUEST", reply
        await answers_a_query(ws)


async def test_legacy_graphql_ws_closes_1003_on_a_binary_frame(capped: str) -> None:
    async with graphql_ws(capped, LEGACY_WS, {}) as ws:
        await ws.conn.send(BINARY)
        assert await close_code(ws) == 1003
