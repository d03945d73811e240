"""The HTTP side of compiled operations (schema/compiled/): one request, one JSON encode.

A single POST or GET operation whose text has a plan is answered here, with the
standard path's context (the same bearer token, consistency token and correlation id),
the same persisted-document rules, and the same status, media type and cache headers
(Exchange). Anything else, and any request the plan abandons, returns None: the view
then runs it through strawberry as if this had never looked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.graphql_http.requests import (
    BatchPolicy,
    operation_from_query_string,
    operations_from_body,
)
from app.graphql_http.responses import Exchange, Outcome
from app.persisted.resolver import PersistedQueries, PersistedQueryRefused
from schema.compiled.operations import CompiledOperations
from schema.context import Context

_CLEAN = Outcome(request_error=False, codes=frozenset(), clean=True)
# The view's get_context: the standard path's Context for this request.
ContextFactory = Callable[[Request, Response], Awaitable[Context]]


async def serve_compiled(
    compiled: CompiledOperations,
    request: Request,
    exchange: Exchange,
    batches: BatchPolicy,
    context_for: ContextFactory,
) -> Response | None:
    """The response to `request` from its compiled plan; None when the standard path must
    answer it."""
    if exchange.media_type is None:
        return None
    try:
        if request.method == "GET":
            operation = operation_from_query_string(request.query_params, "http")
        else:
            parsed = operations_from_body(await request.body(), "http", batches)
            if isinstance(parsed, list):
                return None
            operation = parsed
    except HTTPException:
        return None  # the standard path refuses it in its own words
    persisted: PersistedQueries = request.app.state.dependencies.persisted
    try:
        resolved = await persisted.resolve(
            operation.query, operation.extensions, getattr(operation, "document_id", None)
        )
    except PersistedQueryRefused:
        return None
    if resolved.query is None or resolved.register is not None:
        return None
    plan = compiled.prepared(resolved.query, operation.operation_name)
    if plan is None:
        return None
    sub_response = Response()
    context = await context_for(request, sub_response)
    body = await compiled.execute(plan, operation.variables, context)
    if body is None:
        return None
    response = Response(orjson.dumps(body), media_type="application/json")
    response.headers.raw.extend(
        (name, value) for name, value in sub_response.headers.raw if name == b"x-request-id"
    )
    exchange.outcomes.append(_CLEAN)
    return exchange.finish(response)
