"""Requests refused before (or instead of) execution: a JSON `{"errors": [...]}` with a code.

Strawberry's view raises cross_web's HTTPException, which it renders as text/plain: a
client then only sees "Received status code 400". Our own refusals subclass it (so they
travel strawberry's paths) and carry a code; strawberry's own are translated by their cause.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from cross_web import HTTPException
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from app.graphql_http.negotiation import JSON

_CODES_BY_STATUS = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class Refused(HTTPException):
    """An HTTP-level refusal. `request_error`: a GraphQL request error (the operation to run
    cannot be determined) whose status follows the response media type, like validation's."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        request_error: bool = False,
    ) -> None:
        super().__init__(status, message)
        self.code = code
        self.headers = dict(headers or {})
        self.request_error = request_error


def bad_request(message: str, code: str = "BAD_REQUEST") -> Refused:
    return Refused(400, code, message)


def method_not_allowed(method: str) -> Refused:
    # PUT and DELETE reserve and stop graphql-sse streams (app/sse/) before this view.
    return Refused(
        405,
        "METHOD_NOT_ALLOWED",
        f"GraphQL is served over GET and POST (PUT and DELETE for event streams), not {method}",
        {"Allow": "GET, POST, PUT, DELETE"},
    )


def not_acceptable() -> Refused:
    return Refused(
        406,
        "NOT_ACCEPTABLE",
        "The Accept header allows neither application/graphql-response+json nor "
        "application/json: accept one of them",
    )


def unsupported_media_type(content_type: str | None) -> Refused:
    message = (
        "A POST needs a Content-Type header: send Content-Type: application/json"
        if not content_type
        else f"Content-Type {content_type!r} is not supported: send application/json (UTF-8)"
    )
    return Refused(415, "UNSUPPORTED_MEDIA_TYPE", message)


def refusal(exc: HTTPException) -> Refused:
    """Strawberry's HTTPException as a coded refusal, told apart by what caused it."""
    if isinstance(exc, Refused):
        return exc
    cause = exc.__cause__
    if isinstance(cause, MissingQueryError):
        return bad_request("No GraphQL query found in the request: send `query`, a string")
    if isinstance(cause, InvalidOperationTypeError):
        if cause.operation_type is OperationType.MUTATION:
            return Refused(
                405,
                "METHOD_NOT_ALLOWED",
                "Mutations must be sent with POST: GET may only run queries",
                {"Allow": "POST"},
            )
        return bad_request(exc.reason)
    if isinstance(cause, CannotGetOperationTypeError):
        return Refused(
            400, "OPERATION_RESOLUTION_FAILURE", exc.reason.rstrip("."), request_error=True
        )
    code = _CODES_BY_STATUS.get(exc.status_code, "BAD_REQUEST")
    return Refused(exc.status_code, code, exc.reason)


def error_body(message: str, code: str) -> bytes:
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


def refusal_response(refused: Refused, media_type: str | None) -> Response:
    """The refusal in the negotiated media type (application/json when none was)."""
    media_type = media_type or JSON
    status = refused.status_code
    if refused.request_error and media_type == JSON:
        status = 200  # the legacy media type answers GraphQL request errors with a 200
    return Response(
        error_body(refused.reason, refused.code),
        status_code=status,
        media_type=f"{media_type}; charset=utf-8",
        headers={**refused.headers, "Cache-Control": "no-store"},
    )
