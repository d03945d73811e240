"""graphql-sse's single connection mode: a PUT reserves a stream and answers its token, a
GET with the token opens it, POSTs add operations (202), a DELETE stops one.

A reserved stream has one identity, as a websocket has: the one that reserved it; every
request on it must carry the same Authorization (403 otherwise), so a leaked stream token
alone lets nobody act or read. A reservation counts against the per-address cap from the
PUT, runs at most the per-connection operation cap, and is dropped, with its operations,
when no stream opens it within `reservation_wait_s`. Reservations live in the process that
answered the PUT (behind a load balancer this mode needs sticky sessions).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Send

from app.sse.operations import identity_refusal, operation, read_operation
from app.sse.stream import EventStream
from app.sse.wire import query_param, send_empty, send_json_error
from app.ws_limits import client_address
from app.ws_messages import TOO_MANY_SUBSCRIPTIONS, too_many_subscriptions
from schema.context import Context

if TYPE_CHECKING:
    from app.sse import EventStreams

# A reservation whose stream does not connect in this long is dropped.
RESERVATION_WAIT_S = 30.0


@dataclass
class Reservation:
    token: str
    authorization: str | None
    address: str
    context: Context
    stream: EventStream
    timer: asyncio.TimerHandle | None = None


class ReservedStreams:
    def __init__(self, front: EventStreams, reservation_wait_s: float) -> None:
        self.front = front
        self.view = front.view
        self.reservation_wait_s = reservation_wait_s
        self._reservations: dict[str, Reservation] = {}
        self._cleanups: set[asyncio.Task[None]] = set()

    async def handle(
        self, request: Request, receive: Receive, send: Send, token: str | None, streaming: bool
    ) -> None:
        if request.method == "PUT":
            await self._reserve(request, send)
            return
        reservation = self._reservations.get(token or "")
        if reservation is None:
            await send_json_error(send, 404, "no event stream is reserved under this token")
            return
        if request.headers.get("authorization") != reservation.authorization:
            await send_json_error(
                send,
                403,
                "requests on a reserved event stream must carry the Authorization it was "
                "reserved with",
                "FORBIDDEN",
            )
            return
        if request.method == "DELETE":
            op_id = query_param(request.scope["query_string"], "operationId")
            if not op_id:
                await send_json_error(send, 400, "DELETE needs ?operationId=")
                return
            await reservation.stream.stop(op_id)
            await send_empty(send, 200)
        elif streaming and request.method == "GET":
            await self._connect(reservation, receive, send)
        else:
            await self._add_operation(reservation, request, send)

    def drop_all(self) -> None:
        """Drop every reservation no stream opened (open ones end with their stream)."""
        for token in list(self._reservations):
            self._drop_unconnected(token)

    async def _reserve(self, request: Request, send: Send) -> None:
        context = await self.view.get_context(request, Response())
        refusal = identity_refusal(context)
        if refusal is not None:
            error = refusal["errors"][0]
            code = error["extensions"]["code"]
            status = 401 if code == "UNAUTHENTICATED" else 400
            await send_json_error(send, status, error["message"], code)
            return
        address = client_address(request.scope)
        if not await self.front.admitted(address, send):
            return
        token = secrets.token_urlsafe(24)
        stream = EventStream(self.front.keep_alive_s, single_connection=True)
        authorization = request.headers.get("authorization")
        reservation = Reservation(token, authorization, address, context, stream)
        reservation.timer = asyncio.get_running_loop().call_later(
            self.reservation_wait_s, self._drop_unconnected, token
        )
        self._reservations[token] = reservation
        await send_empty(send, 201, token.encode(), text=True)

    async def _connect(self, reservation: Reservation, receive: Receive, send: Send) -> None:
        if reservation.stream.connected:
            await send_json_error(send, 409, "this event stream is already open", "CONFLICT")
            return
        if reservation.timer is not None:
            reservation.timer.cancel()
        try:
            await self.front.serve(reservation.stream, reservation.context, receive, send, [])
        finally:
            self._forget(reservation.token)

    async def _add_operation(self, reservation: Reservation, request: Request, send: Send) -> None:
        params = await read_operation(request, send)
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
        stream.start(op_id, operation(self.view, request, context, params))
        await send_empty(send, 202)

    def _drop_unconnected(self, token: str) -> None:
        reservation = self._reservations.get(token)
        if reservation is None or reservation.stream.connected:
            return  # an open stream ends by itself and forgets its reservation
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
