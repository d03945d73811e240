"""Helpers for tests: a real HTTP server in-process, a GraphQL client, per-run names."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import functools
import itertools
import json
import os
import socket
import struct
import termios
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from app.server import ShopServer
from app.settings import Settings
from schema.consistency import ConsistencyTokens
from workers.document_store import read_documents, write_documents
from workers.log_reader import read_events
from workers.policy import touched
from workers.projection import Projector, StoredEvent, fold_events
from writes.models import EventRecord


async def run_command(
    *argv: str, env: Mapping[str, str], budget_s: float, cwd: Path | None = None
) -> tuple[int, str, str]:
    """Run a command to its end: (exit code, stdout, stderr). Past `budget_s` it is killed
    and TimeoutError raised."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=dict(env), cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), budget_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class ReadyServer(ShopServer):
    """The API's uvicorn server (app.server), signalling an event once it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@dataclass
class GraphQLClient:
    """Posts GraphQL over real HTTP the way a frontend client does."""

    http: httpx.AsyncClient

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
        )

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self.post(query, variables, token, headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The `data` of a response that must have no top-level errors."""
        body = await self.gql(query, variables, token)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@functools.cache
def consistency_tokens() -> ConsistencyTokens:
    """The consistency-token codec of the apps tests serve: their keys come from the
    environment the session's Settings() read (JWT_SECRET, CONSISTENCY_TOKEN_KEYS)."""
    return ConsistencyTokens(Settings().consistency_keys())


def token_position(token: str) -> int:
    """The event-log position a consistency token from the API names."""
    return consistency_tokens().position(token)


# What asyncpg runs on its own account (transaction control, type introspection once per
# connection and type): not a statement anyone sent.
_DRIVER_OWN = ("BEGIN", "COMMIT", "ROLLBACK")
_INTROSPECTION = ("typeinfo_tree", "set_config('jit'")


@contextmanager
def sql_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement `engine` sends while the block runs: through SQLAlchemy, and
    straight on a pooled connection's asyncpg driver (placeOrder's, decision 0077), which
    asyncpg's query logger sees on every connection checked out during the block."""
    sent: list[str] = []
    # Statements SQLAlchemy announced, which the driver's logger then sees a second time.
    announced: Counter[str] = Counter()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)
        announced[statement] += 1

    def logged(query: Any) -> None:
        text_ = query.query
        if announced[text_]:
            announced[text_] -= 1
            return
        plain = text_.strip()
        if plain.upper().startswith(_DRIVER_OWN) or any(m in plain for m in _INTROSPECTION):
            return
        sent.append(text_)

    watched: list[Any] = []

    def watch(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(logged)
        watched.append(dbapi_connection.driver_connection)

    def unwatch(dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None and dbapi_connection.driver_connection in watched:
            watched.remove(dbapi_connection.driver_connection)
            dbapi_connection.driver_connection.remove_query_logger(logged)

    pool = engine.sync_engine.pool
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    event.listen(pool, "checkout", watch)
    event.listen(pool, "checkin", unwatch)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        event.remove(pool, "checkout", watch)
        event.remove(pool, "checkin", unwatch)
        # Connections still checked out stop reporting too.
        for driver in watched:
            driver.remove_query_logger(logged)


def without_cost(body: dict[str, Any]) -> dict[str, Any]:
    """A response body without `extensions.cost`, which every accepted operation carries,
    for tests that compare whole bodies (the rest of `extensions` stays to be compared)."""
    extensions = {k: v for k, v in body.get("extensions", {}).items() if k != "cost"}
    rest = {k: v for k, v in body.items() if k != "extensions"}
    return rest | ({"extensions": extensions} if extensions else {})


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


async def event_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(EventRecord)) or 0)


SIGN_UP = """
mutation($input: SignUpInput!) {
  signUp(input: $input) {
    __typename
    ... on AuthSuccess { token consistencyToken customer { id email name role orderCount lifetimeValueCents } }
    ... on UserError { code message }
    ... on ValidationError { field }
  }
}"""

LOG_IN = """
mutation($input: LogInInput!) {
  logIn(input: $input) {
    __typename
    ... on AuthSuccess { token consistencyToken customer { id email role orderCount lifetimeValueCents } }
    ... on UserError { code message }
  }
}"""

PRODUCT_FIELDS = "id sku name description priceCents stock inStock unitsSold version updatedAt"

PRODUCT_RESULT = f"""
    __typename
    ... on ProductSuccess {{ consistencyToken product {{ {PRODUCT_FIELDS} }} }}
    ... on UserError {{ code message }}
    ... on ValidationError {{ field }}
    ... on NotFoundError {{ id }}
    ... on VersionConflictError {{ expectedVersion actualVersion }}
"""

CREATE_PRODUCT = f"""
mutation($input: CreateProductInput!) {{ createProduct(input: $input) {{ {PRODUCT_RESULT} }} }}"""
CHANGE_PRICE = f"""
mutation($input: ChangeProductPriceInput!) {{ changeProductPrice(input: $input) {{ {PRODUCT_RESULT} }} }}"""
RESTOCK = f"""
mutation($input: RestockProductInput!) {{ restockProduct(input: $input) {{ {PRODUCT_RESULT} }} }}"""

ORDER_FIELDS = """id status itemCount totalCents placedAt updatedAt version
  customer { id name email }
  lines { productId sku name unitPriceCents quantity lineTotalCents }"""

ORDER_QUERY = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
MY_ORDERS_QUERY = f"{{ myOrders(first: 5) {{ edges {{ node {{ {ORDER_FIELDS} }} }} }} }}"

PLACE_ORDER_RESULT = f"""
    __typename
    ... on OrderSuccess {{ consistencyToken order {{ {ORDER_FIELDS} }} }}
    ... on UserError {{ code message }}
    ... on ValidationError {{ field }}
    ... on NotFoundError {{ id }}
    ... on InsufficientStockError {{ productId requested available }}
"""

ORDER_RESULT = f"""
    __typename
    ... on OrderSuccess {{ consistencyToken order {{ {ORDER_FIELDS} }} }}
    ... on UserError {{ code message }}
    ... on NotFoundError {{ id }}
    ... on InvalidTransitionError {{ from to }}
"""

PLACE_ORDER = f"""
mutation($input: PlaceOrderInput!) {{ placeOrder(input: $input) {{ {PLACE_ORDER_RESULT} }} }}"""
CANCEL_ORDER = f"""
mutation($input: OrderIdInput!) {{ cancelOrder(input: $input) {{ {ORDER_RESULT} }} }}"""
SHIP_ORDER = f"""
mutation($input: OrderIdInput!) {{ shipOrder(input: $input) {{ {ORDER_RESULT} }} }}"""


async def new_product(
    client: GraphQLClient, admin_token: str, *, stock: int = 10, price_cents: int = 1250
) -> dict[str, Any]:
    """A product created through the API (as an admin), as the mutation returned it."""
    data = await client.data(
        CREATE_PRODUCT,
        {
            "input": {
                "sku": unique("SKU"),
                "name": "Test product",
                "priceCents": price_cents,
                "stock": stock,
            }
        },
        admin_token,
    )
    result = data["createProduct"]
    assert result["__typename"] == "ProductSuccess", result
    product: dict[str, Any] = result["product"]
    return product


async def place_order(
    client: GraphQLClient, token: str, lines: list[tuple[str, int]], key: str | None = None
) -> dict[str, Any]:
    """The placeOrder result (a PlaceOrderResult member) for `(product id, quantity)` lines."""
    variables = {
        "input": {
            "lines": [{"productId": pid, "quantity": qty} for pid, qty in lines],
            "idempotencyKey": key,
        }
    }
    data = await client.data(PLACE_ORDER, variables, token)
    result: dict[str, Any] = data["placeOrder"]
    return result


async def product_row(engine: AsyncEngine, product_id: str) -> dict[str, Any]:
    """The product's row in the write store: stock, units_sold, price_cents, version."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT stock, units_sold, price_cents, version FROM products WHERE id = :id"),
                {"id": product_id},
            )
        ).one()
    return dict(row._mapping)


async def count_events(engine: AsyncEngine, event_type: str, data_contains: dict[str, Any]) -> int:
    """Events of a type whose jsonb data contains `data_contains` (PostgreSQL's @>)."""
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM event_log WHERE type = :type AND data @> :data"),
            {"type": event_type, "data": json.dumps(data_contains)},
        )
    return int(count or 0)


async def stored_events(engine: AsyncEngine, after: int, limit: int = 500) -> list[StoredEvent]:
    """Up to `limit` events above position `after`, oldest first, as projectors see them."""
    return await read_events(engine, after, limit)


async def project(
    client: AsyncMongoClient[dict[str, Any]],
    db: AsyncDatabase[dict[str, Any]],
    collections: Mapping[str, str],
    projector: Projector,
    events: list[StoredEvent],
) -> None:
    """Fold `events` into `projector`'s documents in one MongoDB transaction, as the
    runner does: read the touched documents, fold, write each changed one once."""
    keys = touched(projector, events, set()).keys
    async with client.start_session() as session, await session.start_transaction():
        documents = await read_documents(db, collections, keys, session)
        changed = fold_events(projector, events, documents)
        await write_documents(db, collections, {k: documents[k] for k in changed}, session)


async def start_server(
    app: Starlette, port: int, startup_budget_s: float = 30, ws_max_size: int | None = None
) -> tuple[ReadyServer, asyncio.Task[None]]:
    """`app` served by uvicorn on 127.0.0.1:`port` in this event loop, once it accepts
    connections: the server and the task that runs it (stop it with `should_exit`).

    uvicorn refuses websocket frames over `ws_max_size` bytes: by default the app's own
    body limit, as `shop serve` configures it."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        access_log=False,
        ws_max_size=ws_max_size or app.state.max_body_bytes,
    )
    server = ReadyServer(config)
    serve = asyncio.create_task(server.serve())
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait(
        {serve, ready}, timeout=startup_budget_s, return_when=asyncio.FIRST_COMPLETED
    )
    ready.cancel()
    if not server.started:
        server.should_exit = True
        await serve
        raise RuntimeError(f"the API server on port {port} did not start (see the log above)")
    return server, serve


@asynccontextmanager
async def serving(
    app: Starlette, port: int, startup_budget_s: float = 30, ws_max_size: int | None = None
) -> AsyncIterator[GraphQLClient]:
    """`app` served by uvicorn on 127.0.0.1:`port` in this event loop (as the `api` fixture
    serves the main one), and a GraphQL client for it; the server stops on exit."""
    server, serve = await start_server(app, port, startup_budget_s, ws_max_size)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield GraphQLClient(http)
    finally:
        server.should_exit = True
        await serve


@dataclass(frozen=True)
class Scrape:
    """One /metrics response, parsed with prometheus-client's own parser."""

    samples: list[Sample]
    # Every family /metrics declared, with or without samples (counters without `_total`).
    families: set[str]

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def has(self, name: str) -> bool:
        return any(sample.name == name for sample in self.samples)


async def scrape_metrics(http: httpx.AsyncClient) -> Scrape:
    """GET /metrics (a 200 in Prometheus' text format), parsed."""
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    families = list(text_string_to_metric_families(response.text))
    samples = [sample for family in families for sample in family.samples]
    return Scrape(samples, {family.name for family in families})


# Generous bounds for waiting on a loaded two-core machine (never asserted as speed).
WAIT_S = 60


async def until(
    probe: Callable[[], Awaitable[Any]], holds: Callable[[Any], bool], budget_s: float = WAIT_S
) -> Any:
    """Call `probe` until `holds(answer)`; the last answer, or fail after `budget_s`."""
    deadline = time.monotonic() + budget_s
    while True:
        answer = await probe()
        if holds(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"still {answer} after {budget_s} s")
        await asyncio.sleep(0.2)  # a poll interval: /readyz and /metrics push nothing


async def readyz(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    """GET /readyz: the status code and the JSON body (the request itself must not hang)."""
    async with asyncio.timeout(WAIT_S):
        response = await http.get("/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


# GraphQL over websockets: both sub-protocols, as browser clients speak them.

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
WS_PROTOCOLS = (TRANSPORT_WS, LEGACY_WS)


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/graphql"


def ws_auth(token: str | None = None, consistency_token: str | None = None) -> dict[str, Any]:
    """A connection_init payload: {"authorization": "Bearer ...", "consistencyToken": ...}."""
    payload: dict[str, Any] = {}
    if token is not None:
        payload["authorization"] = f"Bearer {token}"
    if consistency_token is not None:
        payload["consistencyToken"] = consistency_token
    return payload


@dataclass
class WsEvent:
    """One message of an operation, the same for both sub-protocols.

    `kind` is "data" (transport-ws `next`, legacy `data`; payload {"data", "errors"?}),
    "error" (payload: a list of GraphQL errors) or "complete".
    """

    kind: str
    id: str
    payload: Any = None

    @property
    def errors(self) -> list[dict[str, Any]]:
        if self.kind == "error":
            return list(self.payload)
        if self.kind == "data":
            return list(self.payload.get("errors") or [])
        return []


class GraphQLWebSocket:
    """A graphql-transport-ws or legacy graphql-ws client on a real websocket."""

    def __init__(self, conn: ClientConnection, protocol: str) -> None:
        self.conn = conn
        self.protocol = protocol
        self._pending: dict[str, deque[WsEvent]] = {}
        self._pongs = 0
        self._ids = itertools.count(1)
        # The protocols carry JSON in text frames; browser clients cannot read binary ones.
        self.binary_frames = 0

    @property
    def legacy(self) -> bool:
        return self.protocol == LEGACY_WS

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(message))

    async def receive(self, budget_s: float) -> dict[str, Any]:
        """The next raw message, waiting at most `budget_s` seconds."""
        async with asyncio.timeout(budget_s):
            raw = await self.conn.recv()
        self.binary_frames += isinstance(raw, bytes)
        message: dict[str, Any] = json.loads(raw)
        return message

    async def init(self, payload: dict[str, Any] | None, budget_s: float = 10) -> dict[str, Any]:
        """Send connection_init; the server's reply (connection_ack or connection_error).

        A graphql-transport-ws server refuses by closing instead: ConnectionClosed then.
        """
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.send(message)
        while True:
            reply = await self.receive(budget_s)
            if reply["type"] != "ka":
                return reply

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """Start an operation; its id."""
        op_id = str(next(self._ids))
        payload = {"query": query, "variables": variables or {}}
        kind = "start" if self.legacy else "subscribe"
        await self.send({"type": kind, "id": op_id, "payload": payload})
        return op_id

    async def stop(self, op_id: str) -> None:
        await self.send({"type": "stop" if self.legacy else "complete", "id": op_id})

    async def sync(self, budget_s: float = 10) -> None:
        """A round trip through the server's message loop (transport-ws ping/pong), so the
        operations sent before it were received and set going; legacy graphql-ws has no
        such message (its server handles messages in order all the same)."""
        if self.legacy:
            return
        seen = self._pongs
        await self.send({"type": "ping"})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        while self._pongs == seen:
            await self._pump(deadline - loop.time())

    async def event(self, op_id: str, budget_s: float = 15) -> WsEvent:
        """The next message of operation `op_id` (others' are kept for later)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        while True:
            queue = self._pending.get(op_id)
            if queue:
                return queue.popleft()
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no message for operation {op_id} within {budget_s} s")
            await self._pump(left)

    async def data(self, op_id: str, budget_s: float = 15) -> dict[str, Any]:
        """The `data` of the operation's next result; fails on errors or completion."""
        event = await self.event(op_id, budget_s)
        assert event.kind == "data", event
        assert not event.errors, event
        data: dict[str, Any] = event.payload["data"]
        return data

    async def refusal(self, op_id: str, budget_s: float = 15) -> list[dict[str, Any]]:
        """The errors the operation fails with (an `error` message, or a result with errors)."""
        event = await self.event(op_id, budget_s)
        assert event.errors, event
        return event.errors

    async def closed(self, budget_s: float = 10) -> int | None:
        """Wait until the server closed the socket; its close code."""
        async with asyncio.timeout(budget_s):
            await self.conn.wait_closed()
        return self.conn.close_code

    async def _pump(self, budget_s: float) -> None:
        if budget_s <= 0:
            raise TimeoutError("no message from the server in time")
        message = await self.receive(budget_s)
        kind = message["type"]
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            self._pongs += 1
        elif kind in ("next", "data"):
            self._stash(WsEvent("data", message["id"], message.get("payload")))
        elif kind == "error":
            payload = message.get("payload")
            errors = payload if isinstance(payload, list) else [payload]
            self._stash(WsEvent("error", message["id"], errors))
        elif kind == "complete":
            self._stash(WsEvent("complete", message["id"]))
        elif kind != "ka":
            raise AssertionError(f"unexpected message {message}")

    def _stash(self, event: WsEvent) -> None:
        self._pending.setdefault(event.id, deque()).append(event)


@asynccontextmanager
async def graphql_ws(
    base_url: str, protocol: str, payload: dict[str, Any] | None = None, *, ack: bool = True
) -> AsyncIterator[GraphQLWebSocket]:
    """A websocket on /graphql speaking `protocol`; initialised with `payload` (and the
    connection_ack checked) unless `ack` is false. Closed on exit."""
    async with connect(
        ws_url(base_url),
        subprotocols=[Subprotocol(protocol)],
        compression=None,
        proxy=None,
        open_timeout=15,
        close_timeout=5,
    ) as conn:
        assert conn.subprotocol == protocol
        client = GraphQLWebSocket(conn, protocol)
        if ack:
            reply = await client.init(payload)
            assert reply["type"] == "connection_ack", reply
        yield client


def _client_frame(data: str | bytes, opcode: int = 0x1) -> bytes:
    """One masked, unfragmented client frame (RFC 6455 section 5.2)."""
    payload = data.encode() if isinstance(data, str) else data
    header = bytearray([0x80 | opcode])
    size = len(payload)
    if size < 126:
        header.append(0x80 | size)
    elif size < 1 << 16:
        header.append(0x80 | 126)
        header += size.to_bytes(2, "big")
    else:
        header.append(0x80 | 127)
        header += size.to_bytes(8, "big")
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes(header) + mask + masked


class StalledWebSocket:
    """A graphql-transport-ws (or legacy graphql-ws) client on a raw socket that, once
    subscribed, reads nothing until told to (`finish`).

    Its receive buffer is made small before connecting, so what the server sends it backs
    up in the server's buffers instead of in this process.
    """

    def __init__(self, sock: socket.socket, protocol: str = TRANSPORT_WS) -> None:
        self.sock = sock
        self.protocol = protocol
        self._buffer = bytearray()

    @classmethod
    async def open(
        cls,
        base_url: str,
        payload: dict[str, Any],
        rcvbuf: int = 4096,
        budget_s: float = 15,
        protocol: str = TRANSPORT_WS,
    ) -> StalledWebSocket:
        """Connect, upgrade and initialise (reading the 101 and the connection_ack)."""
        loop = asyncio.get_running_loop()
        host, _, port = base_url.removeprefix("http://").partition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            async with asyncio.timeout(budget_s):
                await loop.sock_connect(sock, (host, int(port)))
                key = base64.b64encode(os.urandom(16)).decode()
                request = (
                    f"GET /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
                )
                await loop.sock_sendall(sock, request.encode())
                stalled = cls(sock, protocol)
                while b"\r\n\r\n" not in stalled._buffer:
                    await stalled._receive()
                head, _, rest = bytes(stalled._buffer).partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 101"), head
                stalled._buffer = bytearray(rest)
                await stalled.send({"type": "connection_init", "payload": payload})
                ack = await stalled._message()
                assert ack["type"] == "connection_ack", ack
                assert not stalled._buffer, stalled._buffer
        except BaseException:
            sock.close()
            raise
        return stalled

    async def send(self, message: dict[str, Any]) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, _client_frame(json.dumps(message)))

    async def subscribe(self, op_id: str, query: str, variables: dict[str, Any]) -> None:
        payload = {"query": query, "variables": variables}
        kind = "start" if self.protocol == LEGACY_WS else "subscribe"
        await self.send({"type": kind, "id": op_id, "payload": payload})

    def unread_bytes(self) -> int:
        """Bytes the kernel holds for this socket that nobody read (FIONREAD)."""
        raw = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
        unread: int = struct.unpack("i", raw)[0]
        return unread

    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def finish(self, op_ids: set[str], budget_s: float = 30) -> dict[str, list[Any]]:
        """Start reading at last, until each of `op_ids` ended (`complete` or `error`).

        Per operation: the errors of each `next` (empty lists for plain results), and
        the `error` message's payload if it ended with one.
        """
        seen: dict[str, list[Any]] = {op_id: [] for op_id in op_ids}
        ended: set[str] = set()
        async with asyncio.timeout(budget_s):
            while ended != op_ids:
                message = await self._message()
                op_id = message.get("id")
                if op_id not in seen:
                    continue
                if message["type"] in ("next", "data"):
                    seen[op_id].append(message["payload"].get("errors") or [])
                elif message["type"] == "error":
                    seen[op_id].append(message["payload"])
                    ended.add(op_id)
                elif message["type"] == "complete":
                    ended.add(op_id)
        return seen

    def close(self) -> None:
        """Vanish: close the socket, maybe with unread data (the kernel resets the connection)."""
        self.sock.close()

    async def _receive(self) -> None:
        chunk = await asyncio.get_running_loop().sock_recv(self.sock, 1 << 16)
        if not chunk:
            raise AssertionError("the server closed the stalled websocket")
        self._buffer += chunk

    async def _message(self) -> dict[str, Any]:
        """The next message (text or binary), answering pings on the way."""
        while True:
            opcode, payload = await self._frame()
            if opcode in (0x1, 0x2):
                message: dict[str, Any] = json.loads(payload)
                return message
            if opcode == 0x8:
                raise AssertionError(f"the server closed the stalled websocket: {payload!r}")
            if opcode == 0x9:
                pong = _client_frame(payload, opcode=0xA)
                await asyncio.get_running_loop().sock_sendall(self.sock, pong)

    async def _frame(self) -> tuple[int, bytes]:
        """One unfragmented, unmasked server frame: its opcode and payload."""
        while True:
            buffer = self._buffer
            if len(buffer) >= 2:
                size, offset = buffer[1] & 0x7F, 2
                if size == 126:
                    size, offset = int.from_bytes(buffer[2:4], "big"), 4
                elif size == 127:
                    size, offset = int.from_bytes(buffer[2:10], "big"), 10
                if len(buffer) >= offset + size:
                    opcode, payload = buffer[0] & 0x0F, bytes(buffer[offset : offset + size])
                    del buffer[: offset + size]
                    return opcode, payload
            await self._receive()


def server_send_queue(server_port: int, client_port: int) -> int | None:
    """Bytes queued in the kernel for the server's side of a loopback TCP connection
    (tx_queue in /proc/net/tcp); None when the connection is not listed."""
    wanted_local, wanted_remote = f"{server_port:04X}", f"{client_port:04X}"
    try:
        with open("/proc/net/tcp") as table:
            rows = table.read().splitlines()[1:]
    except OSError:
        return None
    for row in rows:
        fields = row.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if local.endswith(":" + wanted_local) and remote.endswith(":" + wanted_remote):
            return int(queues.split(":")[0], 16)
    return None
