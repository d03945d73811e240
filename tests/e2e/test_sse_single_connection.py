"""graphql-sse's single connection mode over real HTTP: PUT reserves a stream, GET opens
it, POSTs add operations (202) whose events carry their operation id, DELETE stops one.
The stream has one identity (the one that reserved it) and the websocket's caps.
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
import orjson

from app.asgi import create_app
from app.settings import Settings
from schema.auth import TokenService
from tests.conftest import Api, Customer
from tests.e2e.test_sse_subscriptions import END_BUDGET_S, SHORT_TTL_S, WAIT_S, hub_of, settled
from tests.e2e.test_subscriptions import order_state
from tests.pipeline import Pipeline
from tests.shop_api import MY_ORDERS_UPDATED, PRODUCT_UPDATED, codes, create_product, place_ok
from tests.sse_client import EVENT_STREAM, TOKEN_HEADER, SseStream
from tests.support import free_port, serving
from writes.commands import Role

# Long enough that the test sees the operation listen first, on a busy machine.
RESERVATION_WAIT_S = 4.0


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"authorization": f"Bearer {token}"}


async def reserve(http: httpx.AsyncClient, token: str | None = None) -> str:
    response = await http.put("/graphql", headers=bearer(token))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


@asynccontextmanager
async def opened(
    http: httpx.AsyncClient, stream_token: str, token: str | None = None
) -> AsyncIterator[SseStream]:
    headers = {"accept": EVENT_STREAM, TOKEN_HEADER: stream_token, **bearer(token)}
    response = await http.send(http.build_request("GET", "/graphql", headers=headers), stream=True)
    try:
        assert response.status_code == 200, (response.status_code, await response.aread())
        yield SseStream(response)
    finally:
        await response.aclose()


async def operate(
    http: httpx.AsyncClient,
    stream_token: str,
    op_id: str,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> httpx.Response:
    body = {"query": query, "variables": variables or {}, "extensions": {"operationId": op_id}}
    return await http.post(
        "/graphql", json=body, headers={TOKEN_HEADER: stream_token, **bearer(token)}
    )


async def test_operations_share_one_stream_and_delete_stops_one(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    http = api.client.http
    product = await create_product(api, admin_token, stock=10)
    hub = hub_of(api.app)
    before = await settled(api)
    stream_token = await reserve(http, customer.token)
    async with opened(http, stream_token, customer.token) as stream:
        accepted = await operate(http, stream_token, "q", "{ apiVersion }", token=customer.token)
        assert accepted.status_code == 202, accepted.text
        answer = await stream.event()
        assert answer.event == "next"
        assert answer.data["id"] == "q"
        assert answer.data["payload"]["data"]["apiVersion"]
        assert (await stream.event()).data == {"id": "q"}  # complete; the stream stays open

        subscribed = await operate(
            http, stream_token, "mine", MY_ORDERS_UPDATED, token=customer.token
        )
        assert subscribed.status_code == 202, subscribed.text
        async with asyncio.timeout(WAIT_S):
            await hub.until_listener_count(before + 1)
        placed = await place_ok(api, customer.token, product["id"])
        pushed = await stream.event()
        assert pushed.event == "next"
        assert pushed.data["id"] == "mine"
        assert order_state(pushed.data["payload"]["data"]) == (placed["order"]["id"], "PLACED", 1)

        stopped = await http.delete(
            "/graphql",
            params={"operationId": "mine"},
            headers={TOKEN_HEADER: stream_token, **bearer(customer.token)},
        )
        assert stopped.status_code == 200, stopped.text
        assert hub.listener_count == before  # stopped before DELETE answered

        # A second stream on the same reservation is refused.
        headers = {"accept": EVENT_STREAM, TOKEN_HEADER: stream_token, **bearer(customer.token)}
        second = await http.get("/graphql", headers=headers)
        assert second.status_code == 409, second.text
    async with asyncio.timeout(WAIT_S):
        await api.app.state.event_streams.until_open_streams(0)
    # The stream ended: its reservation went with it.
    gone = await operate(http, stream_token, "late", "{ apiVersion }", token=customer.token)
    assert gone.status_code == 404


async def test_the_stream_has_the_identity_that_reserved_it(
    api: Api, customer: Customer, admin_token: str, read_side: Pipeline
) -> None:
    http = api.client.http
    refused = await http.put("/graphql", headers=bearer("not-a-jwt"))
    assert refused.status_code == 401
    assert codes(refused.json()["errors"]) == ["UNAUTHENTICATED"]

    stream_token = await reserve(http, customer.token)
    async with opened(http, stream_token, customer.token) as stream:
        other = await operate(http, stream_token, "x", "{ apiVersion }", token=admin_token)
        assert other.status_code == 403
        assert codes(other.json()["errors"]) == ["FORBIDDEN"]
        anonymous = await operate(http, stream_token, "y", "{ apiVersion }")
        assert anonymous.status_code == 403

        # Refusals inside the operation come through the stream, with the websocket's codes.
        await operate(
            http,
            stream_token,
            "dash",
            "subscription { salesDashboardUpdated { orderCount } }",
            token=customer.token,
        )
        refusal = await stream.event()
        assert refusal.data["id"] == "dash"
        assert codes(refusal.data["payload"]["errors"]) == ["FORBIDDEN"]

    unknown = await operate(http, uuid.uuid4().hex, "z", "{ apiVersion }")
    assert unknown.status_code == 404


async def test_a_stream_runs_at_most_the_per_connection_operation_cap(settings: Settings) -> None:
    own = settings.model_copy(update={"ws_max_subscriptions_per_connection": 1})
    port = free_port()
    async with serving(create_app(own), port) as client:
        http = client.http
        stream_token = await reserve(http)
        async with opened(http, stream_token):
            first = await operate(http, stream_token, "a", PRODUCT_UPDATED)
            assert first.status_code == 202, first.text
            again = await operate(http, stream_token, "a", PRODUCT_UPDATED)
            assert again.status_code == 409
            over = await operate(http, stream_token, "b", PRODUCT_UPDATED)
            assert over.status_code == 429
            assert codes(orjson.loads(over.content)["errors"]) == ["TOO_MANY_SUBSCRIPTIONS"]
            no_id = await http.post(
                "/graphql", json={"query": "{ apiVersion }"}, headers={TOKEN_HEADER: stream_token}
            )
            assert no_id.status_code == 400


async def test_the_reserved_stream_ends_when_its_token_expires(
    api: Api, settings: Settings, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    http = api.client.http
    short_lived = TokenService(
        settings.jwt_secret, settings.jwt_algorithm, SHORT_TTL_S, settings.jwt_issuer
    ).issue(uuid.UUID(customer.id), Role.CUSTOMER.value)
    expires_at = jwt.decode(short_lived, options={"verify_signature": False})["exp"]
    hub = hub_of(api.app)
    before = await settled(api)
    stream_token = await reserve(http, short_lived)
    async with opened(http, stream_token, short_lived) as stream:
        for op_id in ("one", "two"):
            accepted = await operate(http, stream_token, op_id, PRODUCT_UPDATED, token=short_lived)
            assert accepted.status_code == 202, accepted.text
        async with asyncio.timeout(WAIT_S):
            await hub.until_listener_count(before + 2)

        budget = max(0.0, expires_at - time.time()) + END_BUDGET_S
        events = await stream.rest(budget)
        assert time.time() >= expires_at - 0.5
        by_operation = {(event.event, event.data["id"]) for event in events}
        assert by_operation == {
            ("next", "one"),
            ("complete", "one"),
            ("next", "two"),
            ("complete", "two"),
        }
        for event in events:
            if event.event == "next":
                assert codes(event.data["payload"]["errors"]) == ["UNAUTHENTICATED"]
    async with asyncio.timeout(WAIT_S):
        await hub.until_listener_count(before)


async def test_a_reservation_never_opened_is_dropped_with_its_operations(
    settings: Settings,
) -> None:
    own = settings.model_copy(update={"ws_max_connections_per_address": 1})
    port = free_port()
    app = create_app(own)
    streams = app.state.event_streams
    streams.reservation_wait_s = RESERVATION_WAIT_S
    async with serving(app, port) as client:
        http = client.http
        stream_token = await reserve(http)
        accepted = await operate(http, stream_token, "a", PRODUCT_UPDATED)
        assert accepted.status_code == 202, accepted.text
        over_cap = await http.put("/graphql")  # a reservation holds its place under the cap
        assert over_cap.status_code == 429, over_cap.text
        async with asyncio.timeout(WAIT_S):
            await hub_of(app).until_listener_count(1)
            # Dropped after reservation_wait_s: its operation stops, its place is free.
            await hub_of(app).until_listener_count(0)
        assert (await operate(http, stream_token, "b", "{ apiVersion }")).status_code == 404
        assert await reserve(http)  # the cap of 1 admits a new reservation again
