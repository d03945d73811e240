"""Browser origins over real HTTP and websockets: in development a frontend's dev server
on any loopback port may call and subscribe; elsewhere only the listed origins may, with
the API's and Apollo's request headers allowed."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from app.asgi import create_app
from app.settings import Settings
from tests.conftest import Api
from tests.support import TRANSPORT_WS, free_port, serving, ws_url

APOLLO_HEADERS = (
    "authorization, content-type, x-consistency-token, x-request-id, "
    "apollographql-client-name, apollographql-client-version"
)


async def preflight(http: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await http.options(
        "/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": APOLLO_HEADERS,
        },
    )


async def cross_origin_query(http: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await http.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin})


async def handshake(base_url: str, origin: str) -> int:
    """The status of a websocket handshake from a page on `origin` (101: accepted)."""
    try:
        async with connect(
            ws_url(base_url), origin=Origin(origin), subprotocols=[Subprotocol(TRANSPORT_WS)],
            proxy=None, open_timeout=15,
        ):  # fmt: skip
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize(
    "origin", ["http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8080"]
)
async def test_development_allows_a_loopback_dev_server_with_apollos_headers(
    api: Api, origin: str
) -> None:
    answer = await preflight(api.client.http, origin)
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == origin
    allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {h.strip() for h in APOLLO_HEADERS.split(",")} <= allowed
    assert int(answer.headers["access-control-max-age"]) > 0

    # graphql-sse's single connection mode: a PUT reserves the stream, DELETE stops one.
    for method in ("PUT", "DELETE"):
        reserve = await api.client.http.options(
            "/graphql",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, x-graphql-event-stream-token",
            },
        )
        assert reserve.status_code == 200, (method, reserve.text)
        assert method in reserve.headers["access-control-allow-methods"]

    response = await cross_origin_query(api.client.http, origin)
    assert response.json()["data"] == {"__typename": "Query"}
    assert response.headers["access-control-allow-origin"] == origin
    assert "x-request-id" in response.headers["access-control-expose-headers"]
    assert await handshake(api.base_url, origin) == 101


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example"])
async def test_other_origins_are_refused_with_a_reason_not_a_405(api: Api, origin: str) -> None:
    answer = await preflight(api.client.http, origin)
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    assert "origin" in answer.text.lower()
    response = await cross_origin_query(api.client.http, origin)
    assert "access-control-allow-origin" not in response.headers
    assert await handshake(api.base_url, origin) == 403


async def test_production_allows_the_listed_origins_only_with_the_configured_headers(
    settings: Settings,
) -> None:
    shop = "https://shop.example"
    production = settings.model_copy(
        update={
            "environment": "production",
            "jwt_secret": "p" * 64,
            "cors_origins": [shop],
            "cors_allow_headers": ["authorization", "content-type", "x-tenant"],
            "port": free_port(),
        }
    )
    async with serving(create_app(production), production.port) as client:
        answer = await preflight(client.http, shop)
        # Apollo's headers are not in this list: the browser is told which ones are.
        assert answer.status_code == 400
        ok = await client.http.options(
            "/graphql",
            headers={
                "Origin": shop,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, x-tenant",
            },
        )
        assert ok.status_code == 200, ok.text
        assert ok.headers["access-control-allow-origin"] == shop
        base_url = f"http://127.0.0.1:{production.port}"
        assert await handshake(base_url, shop) == 101
        for refused in ("http://localhost:5173", "https://other.example"):
            assert (await preflight(client.http, refused)).status_code == 400
            assert await handshake(base_url, refused) == 403
