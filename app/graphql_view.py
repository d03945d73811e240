"""Strawberry's ASGI view, given our context, correlation ids and orjson."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from reads.service import QueryService
from schema.auth import TokenService
from schema.consistency import ConsistencyTokens
from schema.context import Context
from schema.errors import ApiError
from schema.throttling import AuthThrottles
from writes.bus import MessageBus

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Services:
    """What resolvers need, built once in the lifespan."""

    bus: MessageBus
    tokens: TokenService
    consistency: ConsistencyTokens
    queries: QueryService
    throttles: AuthThrottles


def correlation_id(request: Request | WebSocket) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class ShopGraphQL(GraphQL[Context, None]):
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services: Services = request.app.state.services
        request_id = correlation_id(request)
        if isinstance(response, Response):
            response.headers["X-Request-ID"] = request_id
        return Context(
            request=request,
            response=response,
            bus=services.bus,
            tokens=services.tokens,
            consistency=services.consistency,
            queries=services.queries,
            throttles=services.throttles,
            correlation_id=request_id,
            authorization=request.headers.get("authorization"),
            consistency_token=request.headers.get("x-consistency-token"),
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Refuse a websocket whose connection_init carries a bad token (close 4403)."""
        params = context.connection_params
        if params is not None and not isinstance(params, dict):
            raise ConnectionRejectionError({"message": "connection_init payload must be an object"})
        try:
            context.actor()
            context.read_position()
        except ApiError as exc:
            raise ConnectionRejectionError({"message": str(exc), "code": exc.code}) from None
        return None

    def encode_json(self, data: object) -> str:
        # Text, not bytes: websocket messages must travel in text frames for browser clients.
        return orjson.dumps(data).decode()

    def parse_json(self, data: str | bytes) -> Any:
        """A 400, not a 500, for bodies that are not JSON objects (or batches of them)."""
        try:
            decoded = orjson.loads(data)  # refuses invalid UTF-8 and NaN too
        except orjson.JSONDecodeError:
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "The request body must be a JSON object")
        return decoded
