"""Subscriptions need a streaming transport: plain HTTP refuses them with a coded error.

`Schema.execute` serves plain HTTP only (websockets and SSE call `stream`). Given a
subscription it used to run the subscription's field as a query, which failed as a
masked INTERNAL_SERVER_ERROR ("Cannot return null for non-nullable field"); it is now
refused before it runs, as a request error that names the transports that carry it.
"""

from __future__ import annotations

from collections.abc import Iterable

from graphql import GraphQLError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

STREAMING_TRANSPORT_REQUIRED = "STREAMING_TRANSPORT_REQUIRED"
SUBSCRIPTION_NEEDS_A_STREAM = (
    "A subscription needs a streaming transport: send it to /graphql with "
    "'Accept: text/event-stream' (the graphql-sse protocol) or over a websocket "
    "(graphql-transport-ws or graphql-ws)."
)


def without_subscriptions(allowed: Iterable[OperationType]) -> set[OperationType]:
    return set(allowed) - {OperationType.SUBSCRIPTION}


def subscription_refused() -> ExecutionResult:
    """The result plain HTTP gives a subscription: no data, one coded error."""
    error = GraphQLError(
        SUBSCRIPTION_NEEDS_A_STREAM, extensions={"code": STREAMING_TRANSPORT_REQUIRED}
    )
    return ExecutionResult(data=None, errors=[error])
