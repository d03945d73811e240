"""Every top-level error leaves with `extensions.code`; unexpected ones are masked and logged.

graphql-core's parse and validation errors carry no code, and strawberry's MaskErrors
would hide our deliberate errors too; this one extension does both jobs by phase.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import NoneType
from typing import Any

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from schema.errors import ApiError
from writes.errors import Forbidden, Unauthenticated

log = logging.getLogger(__name__)

# Raised before anything runs for requests with no query, an unknown operation name or
# an operation the HTTP method does not allow; the view answers them with coded JSON
# refusals of its own (app/graphql_http/refusals.py).
_HTTP_LEVEL_ERRORS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


class ErrorCodes(SchemaExtension):
    """Pass a factory (the class itself): it keeps per-request state."""

    def __init__(self) -> None:
        super().__init__()
        self._phase = "parse"

    def on_validate(self) -> Iterator[None]:
        self._phase = "validate"
        yield

    def on_execute(self) -> Iterator[None]:
        self._phase = "execute"
        yield

    def on_operation(self) -> Iterator[None]:
        self._phase = "parse"
        try:
            yield
        except _HTTP_LEVEL_ERRORS:
            raise  # the view answers these with a refusal of its own
        except Exception as exc:
            # ParserCache and ValidationCache work inside their own hooks, where strawberry
            # does not catch: a syntax error escapes through here and becomes the result's
            # only error as it is, so it has to be coded on its way out.
            error = (
                exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            )
            raise self._coded(error) from None
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self._coded(error) for error in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Subscription events are coded (and masked) one by one, as they stream."""
        if getattr(result, "errors", None):
            result.errors = [self._coded(error) for error in result.errors]
        yield

    def _coded(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, ApiError | Unauthenticated | Forbidden):
            return _with_code(error, original.code)
        if isinstance(original, InvalidOperationTypeError):
            # A streaming transport's refusal of the operation type (a mutation over GET).
            return _with_code(error, "BAD_REQUEST")
        # Scalars refuse input with ValueError / TypeError (graphql-core wraps it, for
        # variables twice); any other exception under a parse or validation error is a bug.
        refused_input = isinstance(_root_cause(error), NoneType | ValueError | TypeError)
        if self._phase == "parse" and refused_input:
            return _with_code(error, "GRAPHQL_PARSE_FAILED")
        if self._phase == "validate" and refused_input:
            return _with_code(error, "GRAPHQL_VALIDATION_FAILED")
        if self._phase == "execute" and refused_input and error.path is None:
            # Variables that do not coerce to their declared types.
            return _with_code(error, "BAD_USER_INPUT")
        return self._masked(error)

    def _masked(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        correlation_id = getattr(context, "correlation_id", "unknown")
        log.error(
            "unexpected error in %s (correlation id %s)",
            error.path,
            correlation_id,
            exc_info=error.original_error or error,
        )
        return GraphQLError(
            f"Internal server error (reference {correlation_id})",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "correlationId": correlation_id},
        )


def _root_cause(error: GraphQLError) -> BaseException | None:
    """The innermost exception under chained GraphQLErrors, None when a GraphQLError is it."""
    cause: BaseException | None = error
    while isinstance(cause, GraphQLError):
        cause = cause.original_error
    return cause


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )
