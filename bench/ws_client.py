"""A minimal graphql-transport-ws subscriber, as a browser's GraphQL client speaks it.

B4 times each order from the mutation's response to its arrival here, so the client only
connects, authenticates in connection_init, starts one operation, makes sure the server
set it going (a ping/pong round trip through the server's message loop) and then hands
every `next` payload, with the moment it arrived, to a callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")
HANDSHAKE_BUDGET_S = 15.0

# Called with the `data` of each result and time.perf_counter() at its arrival.
OnData = Callable[[dict[str, Any], float], None]


class SubscriptionFailed(RuntimeError):
    """The server refused or ended the operation, or answered out of protocol."""


class Subscriber:
    def __init__(self, conn: ClientConnection) -> None:
        self._conn = conn

    async def _send(self, message: dict[str, Any]) -> None:
        await self._conn.send(orjson.dumps(message).decode())

    async def _receive(self) -> dict[str, Any]:
        message: dict[str, Any] = orjson.loads(await self._conn.recv())
        return message

    async def start(self, query: str, variables: dict[str, Any], token: str) -> None:
        """Authenticate, subscribe and return once the server has taken the operation."""
        async with asyncio.timeout(HANDSHAKE_BUDGET_S):
            await self._send(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
            )
            ack = await self._receive()
            if ack["type"] != "connection_ack":
                raise SubscriptionFailed(f"expected connection_ack, got {ack}")
            payload = {"query": query, "variables": variables}
            await self._send({"type": "subscribe", "id": "1", "payload": payload})
            # Messages are handled in order: the pong means the subscribe was taken.
            await self._send({"type": "ping"})
            while (reply := await self._receive())["type"] != "pong":
                self._check(reply)

    async def deliver(self, on_data: OnData) -> None:
        """Hand each result to `on_data` until the connection closes or the operation ends."""
        while True:
            raw = await self._conn.recv()
            arrived = time.perf_counter()
            message: dict[str, Any] = orjson.loads(raw)
            if message["type"] == "next":
                if message["payload"].get("errors"):
                    raise SubscriptionFailed(f"the subscription failed: {message['payload']}")
                on_data(message["payload"]["data"], arrived)
            elif message["type"] == "ping":
                await self._send({"type": "pong"})
            else:
                self._check(message)

    @staticmethod
    def _check(message: dict[str, Any]) -> None:
        if message["type"] in {"error", "complete", "next"}:
            raise SubscriptionFailed(f"the subscription ended early: {message}")


@asynccontextmanager
async def subscriber(port: int) -> AsyncIterator[Subscriber]:
    """A websocket to the API's /graphql speaking graphql-transport-ws; closed on exit."""
    async with connect(
        f"ws://127.0.0.1:{port}/graphql", subprotocols=[PROTOCOL], compression=None,
        proxy=None, open_timeout=HANDSHAKE_BUDGET_S, close_timeout=5,
    ) as conn:  # fmt: skip
        if conn.subprotocol != PROTOCOL:
            raise SubscriptionFailed(f"the server chose {conn.subprotocol!r}, not {PROTOCOL}")
        yield Subscriber(conn)
