"""Every subscription ends when it should, and so does the server, over real sockets.

A subscription's generator holds a listener on the projection hub (reads/hub.py) for as
long as it runs, so the hub's listener count says which generators are still alive. It
must return to what the client still runs when the client completes (`complete`, legacy
`stop`) an operation, when the socket closes (cleanly or not) and when the server stops;
the per-socket cap counts only live operations. The server's shutdown must not wait on a
client that stopped reading (app/server.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest
import pytest_asyncio
from starlette.applications import Starlette

from app.asgi import create_app
from app.settings import Settings
from reads.hub import ProjectionHub
from reads.read_model import ReadModel
from tests.conftest import Api
from tests.e2e.test_subscription_load import HEAVY, create
from tests.pipeline import Pipeline
from tests.shop_api import PRODUCT_UPDATED, codes
from tests.support import (
    CHANGE_PRICE,
    LEGACY_WS,
    WS_PROTOCOLS,
    GraphQLWebSocket,
    ReadyServer,
    StalledWebSocket,
    free_port,
    graphql_ws,
    start_server,
    token_position,
    ws_auth,
)

OPERATION_CAP = 2
# Generous bounds for a busy 2-core machine; each only stops a broken server hanging the run.
END_BUDGET_S = 30.0
STOP_BUDGET_S = 30.0
MAX_PRICE_CHANGES = 200


def listeners(app: Starlette) -> int:
    """Hub listeners alive in the app: one per running subscription generator."""
    count: int = app.state.dependencies.queries.hub.listener_count
    return count


async def listening(app: Starlette, count: int) -> None:
    """Wait (a bounded time) until exactly `count` subscription generators run."""
    hub: ProjectionHub = app.state.dependencies.queries.hub
    try:
        async with asyncio.timeout(END_BUDGET_S):
            await hub.until_listener_count(count)
    except TimeoutError:
        raise AssertionError(
            f"{hub.listener_count} hub listeners after {END_BUDGET_S} s, not {count}"
        ) from None


@pytest_asyncio.fixture(scope="module")
async def capped(settings: Settings) -> AsyncIterator[tuple[Starlette, str]]:
    """An API process allowing OPERATION_CAP operations per socket: the app and its URL."""
    app = create_app(
        settings.model_copy(update={"ws_max_subscriptions_per_connection": OPERATION_CAP})
    )
    port = free_port()
    server, serve = await start_server(app, port)
    yield app, f"http://127.0.0.1:{port}"
    await stop(server, serve)


class LosesOneCancel:
    """The read model's `positions`, as a subscription awaits it first thing, losing the
    cancel that lands while it runs: what pymongo's awaits do on Python 3.11 when the cancel
    and the server's reply arrive together (`asyncio.wait_for` returns the reply). The
    subscription then goes on to wait for notifications."""

    def __init__(self) -> None:
        self.entered: asyncio.Queue[None] = asyncio.Queue()
        self._never = asyncio.Event()

    async def __call__(self, projections: tuple[str, ...]) -> dict[str, int]:
        self.entered.put_nowait(None)
        with suppress(asyncio.CancelledError):
            await self._never.wait()
        return dict.fromkeys(projections, 0)

    async def reached(self) -> None:
        """Wait until one more subscription runs inside it."""
        async with asyncio.timeout(END_BUDGET_S):
            await self.entered.get()


def losing_one_cancel(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> LosesOneCancel:
    lossy = LosesOneCancel()
    monkeypatch.setattr(app.state.dependencies.queries.read_model, "positions", lossy)
    return lossy


class Baselines:
    """The read model's `positions`, telling when a subscription has read its baseline and
    waits for notifications: a test stops it only then, not in the middle of a MongoDB
    round trip (pymongo leaves a socket unclosed when cancelled while connecting)."""

    def __init__(self, app: Starlette, monkeypatch: pytest.MonkeyPatch) -> None:
        self._read_model: ReadModel = app.state.dependencies.queries.read_model
        self._read: asyncio.Queue[None] = asyncio.Queue()
        monkeypatch.setattr(self._read_model, "positions", self)

    async def __call__(self, projections: tuple[str, ...]) -> dict[str, int]:
        positions = await ReadModel.positions(self._read_model, projections)
        self._read.put_nowait(None)
        return positions

    async def read(self, count: int = 1) -> None:
        """Wait until `count` more subscriptions have read their baselines."""
        async with asyncio.timeout(END_BUDGET_S):
            for _ in range(count):
                await self._read.get()


async def stopped(ws: GraphQLWebSocket, op_id: str) -> None:
    await ws.stop(op_id)
    if ws.legacy:  # legacy graphql-ws answers a stop with `complete`
        assert (await ws.event(op_id)).kind == "complete"


# The client completes an operation ------------------------------------------------------


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
async def test_a_completed_subscription_ends_its_generator_and_frees_its_place(
    capped: tuple[Starlette, str], protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, base_url = capped
    baselines = Baselines(app, monkeypatch)
    async with graphql_ws(base_url, protocol, ws_auth()) as ws:
        running = [await ws.subscribe(PRODUCT_UPDATED) for _ in range(OPERATION_CAP)]
        await baselines.read(OPERATION_CAP)
        await listening(app, OPERATION_CAP)
        await stopped(ws, running.pop())
        await listening(app, OPERATION_CAP - 1)

        # Subscribe and complete in a loop, with every stopped task losing the first cancel:
        # none runs on, and the cap is never exceeded.
        lossy = losing_one_cancel(app, monkeypatch)
        for _ in range(3 * OPERATION_CAP):
            op_id = await ws.subscribe(PRODUCT_UPDATED)
            await lossy.reached()
            assert listeners(app) <= OPERATION_CAP
            await ws.stop(op_id)
            await ws.sync()
        await listening(app, OPERATION_CAP - 1)

        # The cap still counts what runs: one more fits, the next is refused.
        baselines = Baselines(app, monkeypatch)
        running.append(await ws.subscribe(PRODUCT_UPDATED))
        await baselines.read()
        await listening(app, OPERATION_CAP)
        over = await ws.subscribe(PRODUCT_UPDATED)
        event = await ws.event(over)
        assert codes(event.errors) == ["TOO_MANY_SUBSCRIPTIONS"], event
        assert listeners(app) == OPERATION_CAP
    await listening(app, 0)


# The socket closes ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
@pytest.mark.parametrize("how", ["close handshake", "connection dropped"])
async def test_a_closed_socket_ends_every_subscription(
    capped: tuple[Starlette, str], protocol: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, base_url = capped
    baselines = Baselines(app, monkeypatch)
    async with graphql_ws(base_url, protocol, ws_auth()) as ws:
        await ws.subscribe(PRODUCT_UPDATED)
        await baselines.read()
        lossy = losing_one_cancel(app, monkeypatch)  # the second loses the socket's cancel
        await ws.subscribe(PRODUCT_UPDATED)
        await lossy.reached()
        if how == "close handshake":
            await ws.conn.close()
        else:
            ws.conn.transport.abort()  # no close frame: a reset, as a crashed client leaves
        await listening(app, 0)


# The server stops -----------------------------------------------------------------------


async def server_stops(server: ReadyServer, serve: asyncio.Task[None]) -> bool:
    """Ask the server to stop; whether it did within STOP_BUDGET_S."""
    server.should_exit = True
    done, _ = await asyncio.wait({serve}, timeout=STOP_BUDGET_S)
    return serve in done


async def stop(server: ReadyServer, serve: asyncio.Task[None]) -> None:
    """Stop the server, forcing it (uvicorn's second Ctrl-C) if it hangs: a failed test
    must not hang the run."""
    if not await server_stops(server, serve):
        server.force_exit = True
        await serve


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
async def test_the_server_stops_promptly_with_live_subscriptions(
    settings: Settings, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings)
    port = free_port()
    server, serve = await start_server(app, port)
    baselines = Baselines(app, monkeypatch)
    try:
        async with graphql_ws(f"http://127.0.0.1:{port}", protocol, ws_auth()) as ws:
            await ws.subscribe(PRODUCT_UPDATED)
            await baselines.read()
            lossy = losing_one_cancel(app, monkeypatch)
            await ws.subscribe(PRODUCT_UPDATED)
            await lossy.reached()
            assert await server_stops(server, serve), f"stopped within {STOP_BUDGET_S} s"
            assert await ws.closed() == 1012  # "service restart": clients reconnect
    finally:
        monkeypatch.undo()
        await stop(server, serve)
    assert listeners(app) == 0


def unsent_bytes(server: ReadyServer, client_port: int) -> int:
    """Bytes uvicorn holds for a client because the kernel takes no more: it stopped reading."""
    for connection in list(server.server_state.connections):
        client = getattr(connection, "client", None)
        if client is not None and client[1] == client_port:
            size: int = connection.transport.get_write_buffer_size()
            return size
    return 0


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
async def test_the_server_stops_promptly_when_a_subscriber_stopped_reading(
    api: Api,
    settings: Settings,
    admin_token: str,
    read_side: Pipeline,
    protocol: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    product_id, _ = await create(api, admin_token, read_side)
    app = create_app(settings)  # the session's worker announces to it too (same prefix)
    port = free_port()
    server, serve = await start_server(app, port)
    baselines = Baselines(app, monkeypatch)
    stalled: StalledWebSocket | None = None
    try:
        stalled = await StalledWebSocket.open(
            f"http://127.0.0.1:{port}", ws_auth(admin_token), protocol=protocol
        )
        for op_id in ("heavy-1", "heavy-2"):
            await stalled.subscribe(op_id, HEAVY, {})
        await baselines.read(2)

        # Changes pile up until uvicorn holds bytes the client's closed window refuses.
        client_port = stalled.local_port()
        for price in range(2000, 2000 + MAX_PRICE_CHANGES):
            if unsent_bytes(server, client_port) > 0:
                break
            await read_side.wait_until_projected(
                await change_price(api, admin_token, product_id, price)
            )
        assert unsent_bytes(server, client_port) > 0, "the stalled client's sends never backed up"

        # It even stops one operation (legacy graphql-ws then owes it a `complete` it
        # cannot send), and still reads nothing.
        kind = "stop" if protocol == LEGACY_WS else "complete"
        await stalled.send({"type": kind, "id": "heavy-1"})
        await listening(app, 1)

        assert await server_stops(server, serve), f"stopped within {STOP_BUDGET_S} s"
        assert listeners(app) == 0
    finally:
        if stalled is not None:
            stalled.close()  # lets a server that hung on it finish
        await stop(server, serve)


async def change_price(api: Api, admin_token: str, product_id: str, price: int) -> int:
    """The event-log position of the change."""
    data = await api.client.data(
        CHANGE_PRICE, {"input": {"productId": product_id, "priceCents": price}}, admin_token
    )
    result = data["changeProductPrice"]
    assert result["__typename"] == "ProductSuccess", result
    return token_position(result["consistencyToken"])
