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
import secrets
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.types.graphql import OperationType

from app.graphql_view import ShopGraphQL
from app.sse_stream import EventStream, Results
from app.sse_wire import (
    TOKEN_HEADER,
    TOKEN_PARAM,
    BadOperationRequest,
    OperationParams,
    complete_event,
    error_result,
    next_event,
    operation_params,
    query_param,
    send_empty,
    send_json_error,
    wants_event_stream,
)
from app.ws_limits import client_address
from app.ws_messages import TOO_MANY_SUBSCRIPTIONS, too_many_subscriptions
from app.ws_protocols import IdentityExpiry
from schema.auth import token_expired
from schema.context import Context
from schema.errors import ApiError

TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
SHUTTING_DOWN = "SHUTTING_DOWN"
# A reservation whose stream does not connect in this long is dropped.
RESERVATION_WAIT_S = 30.0
DISTINCT = ""  # the one operation of a distinct connection has no id


@dataclass
class Reservation:
    """A single-connection stream, reserved by a PUT, opened by a GET."""

    token: str
    authorization: str | None
    address: str
    context: Context
    stream: EventStream
    timer: asyncio.TimerHandle | None = None
    expiry: IdentityExpiry = field(default_factory=IdentityExpiry)


class EventStreams:
    """The ASGI app for HTTP on /graphql: graphql-sse requests here, the rest to `view`."""

    def __init__(
        self, view: ShopGraphQL, keep_alive_s: float, reservation_wait_s: float = RESERVATION_WAIT_S
    ) -> None:
        self.view = view
        self.keep_alive_s = keep_alive_s
        self.reservation_wait_s = reservation_wait_s
        self._open: set[EventStream] = set()
        self._reservations: dict[str, Reservation] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self._closing = False
        self._open_changed = asyncio.Event()

    @property
    def open_streams(self) -> int:
        return len(self._open)

    async def until_open_streams(self, count: int) -> None:
        """Return once exactly `count` streams are open: what tests wait on, not polling."""
        while len(self._open) != count:
            await self._open_changed.wait()

    def _opened(self, stream: EventStream) -> None:
        self._open.add(stream)
        self._changed()

    def _closed(self, stream: EventStream) -> None:
        self._open.discard(stream)
        self._changed()

    def _changed(self) -> None:
        self._open_changed.set()
        self._open_changed = asyncio.Event()

    def end_all(self) -> None:
        """The server is shutting down: end every stream now and accept no new one."""
        self._closing = True
        for stream in list(self._open):
            stream.abort()
        for token in list(self._reservations):
            self._drop_reservation(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.view(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method: str = scope["method"]
        token = headers.get(TOKEN_HEADER) or query_param(scope["query_string"], TOKEN_PARAM)
        streaming = wants_event_stream(headers.get("accept", ""))
        if method in ("PUT", "DELETE") or (token and method in ("GET", "POST")):
            await self._single_connection(scope, receive, send, token, streaming)
        elif streaming:
            await self._distinct(scope, receive, send)
        else:
            await self.view(scope, receive, send)

    # Distinct connections mode ------------------------------------------------------------

    async def _distinct(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        params = await self._params(request, send)
        if params is None:
            return
        address = client_address(scope)
        if not await self._admitted(address, send):
            return
        stream = EventStream(self.keep_alive_s, single_connection=False)
        expiry = IdentityExpiry()
        try:
            response = Response()
            context = await self.view.get_context(request, response)
            refusal = identity_refusal(context)
            if refusal is not None:
                stream.start(DISTINCT, lambda: _one(refusal))
            else:
                expiry.arm(context, lambda: self._expired(stream))
                stream.start(DISTINCT, lambda: self._results(request, context, params))
            self._opened(stream)
            await stream.serve(receive, send, _extra_headers(response))
        finally:
            self._closed(stream)
            await expiry.disarm()
            self.view.connections.release(address)

    # Single connection mode ---------------------------------------------------------------

    async def _single_connection(
        self, scope: Scope, receive: Receive, send: Send, token: str | None, streaming: bool
    ) -> None:
        request = Request(scope, receive)
        if scope["method"] == "PUT":
            await self._reserve(request, send)
            return
        reservation = self._reservations.get(token or "")
        if reservation is None:
            await send_json_error(send, 404, "no event stream is reserved under this token")
            return
        if request.headers.get("authorization") != reservation.authorization:
            # The stream has one identity, as a websocket has: the one that reserved it.
            await send_json_error(
                send,
                403,
                "requests on a reserved event stream must carry the Authorization it was "
                "reserved with",
                "FORBIDDEN",
            )
            return
        if scope["method"] == "DELETE":
            op_id = query_param(scope["query_string"], "operationId")
            if not op_id:
                await send_json_error(send, 400, "DELETE needs ?operationId=")
                return
            await reservation.stream.stop(op_id)
            await send_empty(send, 200)
        elif streaming and scope["method"] == "GET":
            await self._connect(reservation, receive, send)
        else:
            await self._add_operation(reservation, request, send)

    async def _reserve(self, request: Request, send: Send) -> None:
        if self._closing:
            await send_json_error(send, 503, "the server is shutting down", SHUTTING_DOWN)
            return
        context = await self.view.get_context(request, Response())
        refusal = identity_refusal(context)
        if refusal is not None:
            error = refusal["errors"][0]
            status = 401 if error["extensions"]["code"] == "UNAUTHENTICATED" else 400
            await send_json_error(send, status, error["message"], error["extensions"]["code"])
            return
        address = client_address(request.scope)
        if not await self._admitted(address, send):
            return
        token = secrets.token_urlsafe(24)
        stream = EventStream(self.keep_alive_s, single_connection=True)
        reservation = Reservation(
            token, request.headers.get("authorization"), address, context, stream
        )
        reservation.timer = asyncio.get_running_loop().call_later(
            self.reservation_wait_s, self._drop_unconnected, token
        )
        self._reservations[token] = reservation
        await send_empty(send, 201, token.encode(), text=True)

    async def _connect(self, reservation: Reservation, receive: Receive, send: Send) -> None:
        stream = reservation.stream
        if stream.connected:
            await send_json_error(send, 409, "this event stream is already open", "CONFLICT")
            return
        if reservation.timer is not None:
            reservation.timer.cancel()
        reservation.expiry.arm(reservation.context, lambda: self._expired(stream))
        self._opened(stream)
        try:
            await stream.serve(receive, send, [])
        finally:
            self._closed(stream)
            await reservation.expiry.disarm()
            self._forget(reservation.token)

    async def _add_operation(self, reservation: Reservation, request: Request, send: Send) -> None:
        params = await self._params(request, send)
        if params is None:
            return
        op_id = (params.extensions or {}).get("operationId")
        if not isinstance(op_id, str) or not op_id:
            await send_json_error(send, 400, "the operation needs extensions.operationId")
            return
        stream = reservation.stream
        if op_id in stream.operations:
            await send_json_error(send, 409, f"operation {op_id[:40]!r} is running", "CONFLICT")
            return
        cap = self.view.max_subscriptions_per_connection
        if cap is not None and len(stream.operations) >= cap:
            await send_json_error(send, 429, too_many_subscriptions(cap), TOO_MANY_SUBSCRIPTIONS)
            return
        context = await self.view.get_context(request, Response())
        refusal = identity_refusal(context)
        if refusal is not None:
            stream.start(op_id, lambda: _one(refusal))
        else:
            stream.start(op_id, lambda: self._results(request, context, params))
        await send_empty(send, 202)

    def _drop_unconnected(self, token: str) -> None:
        reservation = self._reservations.get(token)
        if reservation is not None and not reservation.stream.connected:
            self._drop_reservation(token)

    def _drop_reservation(self, token: str) -> None:
        reservation = self._reservations.get(token)
        if reservation is None or reservation.stream.connected:
            return  # an open stream ends by itself (abort) and forgets its reservation
        self._forget(token)
        task = asyncio.create_task(reservation.stream.stop_all(), name="sse-drop-reservation")
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def _forget(self, token: str) -> None:
        reservation = self._reservations.pop(token, None)
        if reservation is not None:
            if reservation.timer is not None:
                reservation.timer.cancel()
            self.view.connections.release(reservation.address)

    # Both modes ---------------------------------------------------------------------------

    async def _params(self, request: Request, send: Send) -> OperationParams | None:
        method = request.method
        if method not in ("GET", "POST"):
            await send_json_error(
                send, 405, "use GET or POST", headers=[(b"allow", b"GET, POST, PUT, DELETE")]
            )
            return None
        if method == "POST" and "application/json" not in request.headers.get("content-type", ""):
            await send_json_error(send, 415, "a POST must carry application/json")
            return None
        try:
            return operation_params(method, request.scope["query_string"], await request.body())
        except BadOperationRequest as exc:
            await send_json_error(send, exc.status, str(exc))
            return None

    async def _admitted(self, address: str, send: Send) -> bool:
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

    async def _results(
        self, request: Request, context: Context, params: OperationParams
    ) -> Results:
        allowed = {OperationType.QUERY, OperationType.SUBSCRIPTION}
        if request.method == "POST":  # no mutation over GET (GraphQL over HTTP)
            allowed.add(OperationType.MUTATION)
        source = await self.view.schema.stream(
            params.query,
            variable_values=params.variables,
            context_value=context,
            operation_name=params.operation_name,
            operation_extensions=params.extensions,
            allowed_operation_types=allowed,
        )

        async def formatted() -> AsyncIterator[dict[str, Any]]:
            async with aclosing(source):
                async for result in source:
                    yield dict(await self.view.process_result(request, result))  # type: ignore[arg-type]

        return formatted()

    async def _expired(self, stream: EventStream) -> None:
        """The identity ended: each operation ends with the error, then the stream."""
        error = error_result(str(token_expired()), "UNAUTHENTICATED")
        op_ids = list(stream.operations)
        await stream.stop_all()
        for op_id in op_ids:
            event_id = op_id if stream.single_connection else None
            await stream.put(next_event(error, event_id))
            await stream.put(complete_event(event_id))
        await stream.finish()


def identity_refusal(context: Context) -> dict[str, Any] | None:
    """The result that refuses a bad bearer or consistency token, as on_ws_connect does."""
    try:
        context.actor()
        context.read_position()
    except ApiError as exc:
        return error_result(str(exc), exc.code)
    return None


async def _one(result: dict[str, Any]) -> Results:
    async def single() -> AsyncIterator[dict[str, Any]]:
        yield result

    return single()


def _extra_headers(response: Response) -> list[tuple[bytes, bytes]]:
    """What get_context put on its response (X-Request-ID), for the stream's head."""
    return [
        (k, v) for k, v in response.raw_headers if k not in (b"content-length", b"content-type")
    ]


__all__ = ["EventStreams", "identity_refusal"]
