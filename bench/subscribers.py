"""Websocket subscribers in a process of their own, and the handle the bench drives them by.

    python -m bench.subscribers     # stdin: one JSON spec line, then requests; see below

The spec is {"url", "tokens", "count", "connect_at_once"}: `count` graphql-transport-ws
connections, subscriber i signed in as tokens[i % len(tokens)], each subscribed to
myOrdersUpdated (its customer's orders as they are placed and change), the way a browser
holds one open. Once all are subscribed the process prints {"ready": n}. Each further
line {"until": N, "budget_s": s} prints the tally once N messages arrived or s seconds
passed ({} prints it at once); end of input closes every connection and prints it last.
They run apart from the API so their cost does not land in the process being measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")
MY_ORDERS_UPDATED = "subscription { myOrdersUpdated { id status version totalCents } }"
HANDSHAKE_BUDGET_S = 30.0
READY_BUDGET_S = 180.0


@dataclass
class Tally:
    connected: int = 0
    messages: int = 0
    errors: int = 0
    closed: int = 0
    error_sample: str = ""


class Subscriptions:
    """The process side: every connection, what they received, and who waits for it."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.connections: list[ClientConnection] = []
        self._arrived = asyncio.Condition()

    async def open(self, url: str, token: str) -> None:
        """Connect, initialise, subscribe, and make a ping round trip so the server has
        the subscription going before we report ready (the protocol has no ack for it)."""
        conn = await connect(url, subprotocols=[PROTOCOL], compression=None, open_timeout=30)
        self.connections.append(conn)
        async with asyncio.timeout(HANDSHAKE_BUDGET_S):
            payload = {"authorization": f"Bearer {token}"}
            await conn.send(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
            await _expect(conn, "connection_ack")
            subscribe = {"id": "1", "type": "subscribe", "payload": {"query": MY_ORDERS_UPDATED}}
            await conn.send(orjson.dumps(subscribe).decode())
            await conn.send(orjson.dumps({"type": "ping"}).decode())
            await _expect(conn, "pong")
        self.tally.connected += 1

    async def listen(self, conn: ClientConnection) -> None:
        try:
            async for raw in conn:
                await self._handle(conn, orjson.loads(raw))
        except ConnectionClosed:
            pass
        self.tally.closed += 1

    async def _handle(self, conn: ClientConnection, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ping":
            await conn.send(orjson.dumps({"type": "pong"}).decode())
            return
        if kind == "next" and not message.get("payload", {}).get("errors"):
            self.tally.messages += 1
        elif kind != "pong":  # an error, a result with errors, or an unasked-for complete
            self.tally.errors += 1
            self.tally.error_sample = self.tally.error_sample or orjson.dumps(message).decode()
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_for(self, messages: int, budget_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(budget_s), self._arrived:
                await self._arrived.wait_for(lambda: self.tally.messages >= messages)


async def _expect(conn: ClientConnection, kind: str) -> None:
    while (message := orjson.loads(await conn.recv()))["type"] != kind:
        if message["type"] not in ("ping", "pong", "ka"):
            raise RuntimeError(f"expected {kind}, got {message}")


def _emit(value: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(value) + b"\n")
    sys.stdout.buffer.flush()


async def _stdin() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    return reader


async def serve() -> None:
    requests = await _stdin()
    spec = orjson.loads(await requests.readline())
    subs = Subscriptions()
    tokens, step = spec["tokens"], spec.get("connect_at_once", 20)
    for first in range(0, spec["count"], step):
        last = min(first + step, spec["count"])
        await asyncio.gather(
            *(subs.open(spec["url"], tokens[i % len(tokens)]) for i in range(first, last))
        )
    listeners = [asyncio.create_task(subs.listen(conn)) for conn in subs.connections]
    _emit({"ready": subs.tally.connected})
    while line := await requests.readline():
        request = orjson.loads(line)
        if "until" in request:
            await subs.wait_for(request["until"], request.get("budget_s", 10.0))
        _emit(asdict(subs.tally))
    await asyncio.gather(*(conn.close() for conn in subs.connections))
    await asyncio.gather(*listeners)
    _emit(asdict(subs.tally))


# The bench's side ------------------------------------------------------------------------


@dataclass
class SubscriberProcess:
    """Talks to a running `python -m bench.subscribers` over its stdin and stdout."""

    process: asyncio.subprocess.Process

    async def _request(self, request: dict[str, Any], budget_s: float = 30.0) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(orjson.dumps(request) + b"\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), budget_s)
        if not line:
            raise RuntimeError("the subscriber process exited")
        reply: dict[str, Any] = orjson.loads(line)
        return reply

    async def tally(self) -> dict[str, Any]:
        return await self._request({})

    async def tally_once(self, messages: int, budget_s: float) -> dict[str, Any]:
        """The tally once `messages` arrived in all, or after `budget_s` seconds."""
        request = {"until": messages, "budget_s": budget_s}
        return await self._request(request, budget_s + 30.0)

    async def finish(self) -> dict[str, Any]:
        """Close every connection; the final tally."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        line = await asyncio.wait_for(self.process.stdout.readline(), 60.0)
        await self.process.wait()
        final: dict[str, Any] = orjson.loads(line)
        return final


@asynccontextmanager
async def subscribers(
    port: int, tokens: list[str], count: int, connect_at_once: int = 20
) -> AsyncIterator[SubscriberProcess]:
    """`count` subscribers on the API at `port`, ready (all subscribed) on entry."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.subscribers",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    handle = SubscriberProcess(process)
    spec = {"url": f"ws://127.0.0.1:{port}/graphql", "tokens": tokens, "count": count,
            "connect_at_once": connect_at_once}  # fmt: skip
    try:
        ready = await handle._request(spec, READY_BUDGET_S)
        if ready.get("ready") != count:
            raise RuntimeError(f"only {ready} of {count} subscribers got going")
        yield handle
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def main() -> int:
    uvloop.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
