"""GraphQL over Server-Sent Events (the graphql-sse protocol) at /graphql, beside the
websocket protocols and with their rules (decision 0050).

Distinct connections mode: a GET or POST that accepts `text/event-stream` runs its
operation (any operation: a query or mutation streams one result) and streams `next`
events, then `complete`; closing the stream stops it. Single connection mode: a PUT
reserves a stream and answers its token; a GET with the token (header
`X-GraphQL-Event-Stream-Token` or parameter `token`) and `Accept: text/event-stream`
opens it; POSTs with the token and `extensions.operationId` add operations to it (202);
a DELETE with the token and `?operationId=` stops one. Every other request goes on to
the GraphQL view.

The websocket rules hold: the caller is who the Authorization header names, a bad token
or consistency token refuses the operation with the websocket's codes, and the stream
ends when the token expires (app.ws_protocols.IdentityExpiry); a stream (or reservation)
counts against the per-address cap of open websockets (the view's ConnectionsPerAddress)
and a reserved stream against the per-connection operation cap; document limits and cost
budgets are the schema's own. The server's shutdown ends every stream
(`end_all`, called by app.server.ShopServer) without `complete`, so clients reconnect.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.graphql_view import ShopGraphQL
from app.sse.operations import end_for_expiry, operation, read_operation, response_headers
from app.sse.reserved import RESERVATION_WAIT_S, ReservedStreams
from app.sse.stream import EventStream
from app.sse.wire import TOKEN_HEADER, TOKEN_PARAM, query_param, send_json_error, wants_event_stream
from app.ws_limits import client_address
from app.ws_protocols import IdentityExpiry
from schema.context import Context
from schema.errors import ApiError

TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
SHUTTING_DOWN = "SHUTTING_DOWN"
DISTINCT = ""  # the one operation of a distinct connection has no id


class EventStreams:
    """The ASGI app for HTTP on /graphql: graphql-sse requests here, the rest to `view`."""

    def __init__(
        self, view: ShopGraphQL, keep_alive_s: float, reservation_wait_s: float = RESERVATION_WAIT_S
    ) -> None:
        self.view = view
        self.keep_alive_s = keep_alive_s
        self.reserved = ReservedStreams(self, reservation_wait_s)
        self._open: set[EventStream] = set()
        self._closing = False
        self._open_changed = asyncio.Event()

    @property
    def open_streams(self) -> int:
        return len(self._open)

    async def until_open_streams(self, count: int) -> None:
        """Return once exactly `count` streams are open: what tests wait on, not polling."""
        while len(self._open) != count:
            await self._open_changed.wait()

    def end_all(self) -> None:
        """The server is shutting down: end every stream now and accept no new one."""
        self._closing = True
        for stream in list(self._open):
            stream.abort()
        self.reserved.drop_all()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.view(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method: str = scope["method"]
        query_string: bytes = scope["query_string"]
        token = headers.get(TOKEN_HEADER) or (
            # Parsed only when it may be there: plain GET queries are the hot path.
            query_param(query_string, TOKEN_PARAM) if b"token=" in query_string else None
        )
        streaming = wants_event_stream(headers.get("accept", ""))
        if method in ("PUT", "DELETE") or (token and method in ("GET", "POST")):
            await self.reserved.handle(Request(scope, receive), receive, send, token, streaming)
        elif streaming:
            await self._distinct(scope, receive, send)
        else:
            await self.view(scope, receive, send)

    async def admitted(self, address: str, send: Send) -> bool:
        """Whether `address` may hold one more stream (it then counts until released);
        if not, a JSON error has answered."""
        if self._closing:
            await send_json_error(send, 503, "the server is shutting down", SHUTTING_DOWN)
            return False
        if self.view.connections.admit(address):
            return True
        cap = self.view.connections.cap
        await send_json_error(
            send,
            429,
            f"too many open event streams and websockets from this address (at most {cap})",
            TOO_MANY_CONNECTIONS,
            headers=[(b"retry-after", b"5")],
        )
        return False

    async def serve(
        self,
        stream: EventStream,
        context: Context,
        receive: Receive,
        send: Send,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Answer with `stream` until it ends, or until `context`'s identity expires."""
        expiry = IdentityExpiry()
        with suppress(ApiError):  # a refused identity has no expiry: its stream ends at once
            expiry.arm(context, lambda: end_for_expiry(stream))
        self._open.add(stream)
        self._changed()
        try:
            await stream.serve(receive, send, headers)
        finally:
            self._open.discard(stream)
            self._changed()
            await expiry.disarm()

    async def _distinct(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        params = await read_operation(request, send)
        if params is None:
            return
        address = client_address(scope)
        if not await self.admitted(address, send):
            return
        try:
            response = Response()
            context = await self.view.get_context(request, response)
            stream = EventStream(self.keep_alive_s, single_connection=False)
            stream.start(DISTINCT, operation(self.view, request, context, params))
            await self.serve(stream, context, receive, send, response_headers(response))
        finally:
            self.view.connections.release(address)

    def _changed(self) -> None:
        self._open_changed.set()
        self._open_changed = asyncio.Event()


__all__ = ["EventStreams"]
