"""Strawberry's two websocket handlers, held to the HTTP rules.

Each reads frames through FrameReader (size limit, text, JSON), checks every message
before strawberry sees it (app.ws_messages), closes the socket with 4403 when the bearer
token it was opened with expires (decision 0026), and refuses an operation over the
per-connection cap with a coded error for that operation only.

An operation ends when its task does, and strawberry ends it with one `Task.cancel()`.
One cancel can be lost: a subscription stopped during its first MongoDB read was seen
"cancelling" yet waiting for notifications. (On Python 3.11 `asyncio.wait_for`, which
pymongo awaits inside, returns the result of an awaitable that finished as the cancel came
and drops the cancel; the worker's supervisor met the same, tests/unit/test_supervisor_stop.)
Such a subscription ran on for ever: it kept its hub listener, no longer counted against
the cap, and hung the socket's shutdown, which awaited it, and so the server's. So a stopped
operation is cancelled again and again until its task has ended, and counts until then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine
from contextlib import suppress
from typing import Any, cast

from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInit,
)
from strawberry.subscriptions.protocols.graphql_ws.types import (
    OperationMessage,
    StartMessage,
)

from app.persisted.sockets import resolve_operation
from app.ws_frames import BadFrame, FrameReader
from app.ws_messages import (
    TOO_MANY_SUBSCRIPTIONS,
    coded_error,
    connection_error,
    legacy_error,
    legacy_ws_reply,
    too_many_subscriptions,
    transport_ws_problem,
)
from schema.auth import token_expired
from schema.context import Context

TRANSPORT_BAD_REQUEST = 4400  # graphql-transport-ws: any malformed message
FORBIDDEN = 4403  # graphql-transport-ws' code for a refused identity; used in both
UNSUPPORTED_DATA = 1003  # RFC 6455: a binary frame where only text is understood
MESSAGE_TOO_BIG = 1009  # RFC 6455
RECANCEL_EVERY_S = 0.1


def cancel_until_done(task: asyncio.Task[Any]) -> None:
    """Cancel `task` now and again every RECANCEL_EVERY_S until it has ended."""
    if not task.done():
        task.cancel()
        asyncio.get_running_loop().call_later(RECANCEL_EVERY_S, cancel_until_done, task)


async def ended(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel every task (again, if a cancel was lost) and return once all have ended."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        cancel_until_done(task)
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: strawberry logged it, or it is a lost send


class IdentityExpiry:
    """Runs a coroutine once, when the socket's bearer token expires: one timer, no polling."""

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None

    def arm(self, context: Context, on_expiry: Callable[[], Coroutine[Any, Any, None]]) -> None:
        expires_at = context.identity_expires_at()
        if expires_at is None or self._timer is not None:
            return
        delay = max(0.0, expires_at - context.tokens.clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire, on_expiry)

    def _fire(self, on_expiry: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._running = asyncio.create_task(on_expiry())

    async def disarm(self) -> None:
        """Cancel the timer; if it fired, let its close finish first."""
        if self._timer is not None:
            self._timer.cancel()
        if self._running is not None:
            with suppress(Exception):
                await self._running


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws: any malformed message closes the socket with 4400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expiry = IdentityExpiry()
        # Completed operations whose tasks have not ended yet.
        self.stopping: set[asyncio.Task[None]] = set()

    async def handle(self) -> None:
        self.on_request_accepted()
        reader = cast("FrameReader", self.websocket)
        try:
            async for frame in reader.frames():
                if isinstance(frame, BadFrame):
                    code = MESSAGE_TOO_BIG if frame.kind == "too_big" else TRANSPORT_BAD_REQUEST
                    await reader.close(code, frame.reason)
                    break
                problem = transport_ws_problem(frame)
                if problem is not None:
                    await reader.close(TRANSPORT_BAD_REQUEST, problem)
                    break
                await self.handle_message(cast("Message", frame))
        except WebSocketDisconnected:
            pass
        finally:
            await self.expiry.disarm()
            await self.shutdown()

    async def shutdown(self) -> None:
        await super().shutdown()
        await ended(self.stopping)

    async def cleanup_operation(self, operation_id: str) -> None:
        # Strawberry pops the operation and cancels its task once, without awaiting it (it
        # must not block this loop); the task is cancelled until it has really ended.
        operation = self.operations.get(operation_id)
        await super().cleanup_operation(operation_id)
        if operation is not None and operation.task is not None and not operation.task.done():
            task = operation.task
            self.stopping.add(task)
            task.add_done_callback(self.stopping.discard)
            cancel_until_done(task)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        # The protocol allows a null payload; strawberry would close on it.
        if message.get("payload") is None:
            message = {"type": "connection_init", "payload": {}}
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self.expiry.arm(self.context, self._identity_expired)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        cap = self.max_subscriptions_per_connection
        if cap is not None and len(self.operations) + len(self.stopping) >= cap:
            await ended(self.stopping)  # operations the client completed free their places
        if (
            cap is not None
            and self.connection_acknowledged
            and message["id"] not in self.operations
            and len(self.operations) >= cap
        ):
            error = coded_error(too_many_subscriptions(cap), TOO_MANY_SUBSCRIPTIONS)
            await self.send_message(
                cast("Message", {"id": message["id"], "type": "error", "payload": [error]})
            )
            return
        payload, refused = await resolve_operation(self.context, message.get("payload"))
        if refused is not None:
            error = coded_error(str(refused), refused.code)
            await self.send_message(
                cast("Message", {"id": message["id"], "type": "error", "payload": [error]})
            )
            return
        await super().handle_subscribe(cast("SubscribeMessage", {**message, "payload": payload}))

    async def _identity_expired(self) -> None:
        # Operations first, so none of them sends on a socket that is closing.
        for op_id in list(self.operations):
            await self.cleanup_operation(op_id)
        await ended(self.stopping)
        await cast("FrameReader", self.websocket).close(FORBIDDEN, str(token_expired()))


class AnyOperation:
    """A schema whose `subscribe` runs any operation: the legacy protocol's `start` carries
    queries and mutations too, and strawberry's legacy handler would ask for a subscription
    (a query then failed as an internal error)."""

    def __init__(self, schema: BaseSchema) -> None:
        self._schema = schema

    async def subscribe(self, **operation: Any) -> Any:
        return await self._schema.stream(**operation)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy graphql-ws: malformed messages are answered and the socket stays open, as its
    reference server does; binary and oversized frames close it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = cast("BaseSchema", AnyOperation(self.schema))
        self.expiry = IdentityExpiry()

    async def handle(self) -> None:
        reader = cast("FrameReader", self.websocket)
        try:
            async for frame in reader.frames():
                if isinstance(frame, BadFrame) and frame.kind != "not_json":
                    code = MESSAGE_TOO_BIG if frame.kind == "too_big" else UNSUPPORTED_DATA
                    await reader.close(code, frame.reason)
                    break
                if isinstance(frame, BadFrame):
                    await self._send(connection_error(frame.reason))
                    continue
                reply = legacy_ws_reply(frame)
                if reply is not None:
                    await self._send(reply)
                    continue
                await self.handle_message(cast("OperationMessage", frame))
        except WebSocketDisconnected:
            pass
        finally:
            await self.expiry.disarm()
            if self.keep_alive_task:
                self.keep_alive_task.cancel()
                with suppress(BaseException):
                    await self.keep_alive_task
            await self.cleanup()

    async def handle_connection_init(self, message: LegacyConnectionInit) -> None:
        if self.connection_acknowledged:
            # One identity per socket: a second init may not swap it (or its expiry).
            await self._send(connection_error("the connection is already initialised"))
            return
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self.expiry.arm(self.context, self._identity_expired)

    async def handle_start(self, message: StartMessage) -> None:
        cap = self.max_subscriptions_per_connection
        if (
            cap is not None
            and self.connection_acknowledged
            and message["id"] not in self.tasks
            and len(self.tasks) >= cap
        ):
            error = too_many_subscriptions(cap)
            await self._send(legacy_error(message["id"], error, TOO_MANY_SUBSCRIPTIONS))
            return
        payload, refused = await resolve_operation(self.context, message.get("payload"))
        if refused is not None:
            await self._send(legacy_error(message["id"], str(refused), refused.code))
            return
        await super().handle_start(cast("StartMessage", {**message, "payload": payload}))

    async def cleanup_operation(self, operation_id: str) -> None:
        # Strawberry's, but its single cancel then await hung this loop on a task that lost
        # the cancel.
        result_source = self.subscriptions.pop(operation_id, None)
        if result_source is not None:
            with suppress(RuntimeError):  # "already running": the cancel ends it
                await result_source.aclose()
        task = self.tasks.pop(operation_id, None)
        if task is not None:
            await ended([task])

    async def _identity_expired(self) -> None:
        await self.cleanup()  # each operation ends with `complete`, as the protocol has it
        await cast("FrameReader", self.websocket).close(FORBIDDEN, str(token_expired()))

    async def _send(self, message: dict[str, Any]) -> None:
        await self.send_message(cast("OperationMessage", message))
