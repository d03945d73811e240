"""What both graphql-sse modes do with one operation: read it from the request, refuse a
bad identity as on_ws_connect does, run it through the schema (limits and budgets are the
schema's own), and end it when the identity expires."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send
from strawberry.types.graphql import OperationType

from app.graphql_view import ShopGraphQL
from app.persisted.resolver import PersistedQueries, PersistedQueryRefused
from app.sse.stream import EventStream, Results
from app.sse.wire import (
    BadOperationRequest,
    OperationParams,
    complete_event,
    error_result,
    next_event,
    operation_params,
    send_json_error,
)
from schema.auth import token_expired
from schema.context import Context
from schema.errors import ApiError

Operation = Callable[[], Awaitable[Results]]


async def read_operation(request: Request, send: Send) -> OperationParams | None:
    """The request's operation; None once a JSON error answered a request without one."""
    method = request.method
    if method not in ("GET", "POST"):
        allow = [(b"allow", b"GET, POST, PUT, DELETE")]
        await send_json_error(send, 405, "use GET or POST", headers=allow)
        return None
    if method == "POST" and "application/json" not in request.headers.get("content-type", ""):
        await send_json_error(send, 415, "a POST must carry application/json")
        return None
    try:
        return operation_params(method, request.scope["query_string"], await request.body())
    except BadOperationRequest as exc:
        await send_json_error(send, exc.status, str(exc))
        return None


def identity_refusal(context: Context) -> dict[str, Any] | None:
    """The result that refuses a bad bearer or consistency token, as on_ws_connect does."""
    try:
        context.actor()
        context.read_position()
    except ApiError as exc:
        return error_result(str(exc), exc.code)
    return None


def operation(
    view: ShopGraphQL, request: Request, context: Context, params: OperationParams
) -> Operation:
    """The operation to start on a stream: its identity's refusal, or its results."""
    refusal = identity_refusal(context)
    if refusal is not None:
        return lambda: _one(refusal)
    return lambda: _results(view, request, context, params)


async def end_for_expiry(stream: EventStream) -> None:
    """The identity ended: each operation ends with the error, then the stream."""
    error = error_result(str(token_expired()), "UNAUTHENTICATED")
    op_ids = list(stream.operations)
    await stream.stop_all()
    for op_id in op_ids:
        event_id = op_id if stream.single_connection else None
        await stream.put(next_event(error, event_id))
        await stream.put(complete_event(event_id))
    await stream.finish()


def response_headers(response: Response) -> list[tuple[bytes, bytes]]:
    """What get_context put on its response (X-Request-ID), for the stream's head."""
    return [
        (k, v) for k, v in response.raw_headers if k not in (b"content-length", b"content-type")
    ]


async def _results(
    view: ShopGraphQL, request: Request, context: Context, params: OperationParams
) -> Results:
    allowed = {OperationType.QUERY, OperationType.SUBSCRIPTION}
    if request.method == "POST":  # no mutation over GET (GraphQL over HTTP)
        allowed.add(OperationType.MUTATION)
    persisted: PersistedQueries = request.app.state.dependencies.persisted
    try:  # a stream obeys PERSISTED_QUERIES as the HTTP view does
        resolved = await persisted.resolve(params.query, params.extensions, None)
    except PersistedQueryRefused as refused:
        return await _one(error_result(str(refused), refused.code))
    source = await view.schema.stream(
        resolved.query or params.query,
        variable_values=params.variables,
        context_value=context,
        operation_name=params.operation_name,
        operation_extensions=params.extensions,
        allowed_operation_types=allowed,
    )

    async def formatted() -> AsyncIterator[dict[str, Any]]:
        async with aclosing(source):
            async for result in source:
                yield dict(await view.process_result(request, result))  # type: ignore[arg-type]

    return formatted()


async def _one(result: dict[str, Any]) -> Results:
    async def single() -> AsyncIterator[dict[str, Any]]:
        yield result

    return single()
