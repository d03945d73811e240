"""Strawberry's ASGI view, given our context, correlation ids and orjson."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.types.unset import UnsetType

from app.graphiql import page_response
from app.graphql_http.refusals import bad_request
from app.graphql_http.view import HttpRules
from app.origins import BrowserOrigins
from app.persisted.resolver import PersistedQueries
from app.persisted.view import PersistedDocumentsView
from app.ws_frames import FrameReader
from app.ws_limits import TRY_AGAIN_LATER, ConnectionsPerAddress, client_address
from app.ws_protocols import LegacyWSHandler, TransportWSHandler
from reads.queries import ReadQueries
from schema.auth import TokenService
from schema.compiled.operations import CompiledOperations
from schema.consistency import CONSISTENCY_HEADER, ConsistencyTokens
from schema.context import Context
from schema.errors import ApiError
from schema.throttling import AuthThrottles
from writes.bus import MessageBus

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class AppDependencies:
    """The clients and services one app's requests share, built once in its lifespan
    (app.state.dependencies); each request's Context is made from them."""

    bus: MessageBus
    tokens: TokenService
    consistency: ConsistencyTokens
    queries: ReadQueries
    throttles: AuthThrottles
    persisted: PersistedQueries


def correlation_id(request: Request | WebSocket) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class ShopGraphQL(PersistedDocumentsView):
    """Strawberry's view with our context, and websockets held to the HTTP rules: frames
    up to `max_frame_bytes`, `max_connections_per_address` open sockets per client
    address, the socket's identity no longer than its token (app.ws_protocols); HTTP held
    to GraphQL over HTTP (app/graphql_http/)."""

    websocket_adapter_class = FrameReader  # type: ignore[assignment]  # as strawberry.asgi.GraphQL
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self,
        schema: BaseSchema,
        *,
        max_frame_bytes: int,
        max_connections_per_address: int,
        origins: BrowserOrigins,
        http_rules: HttpRules | None = None,
        compiled: CompiledOperations | None = None,
        **options: Any,
    ) -> None:
        super().__init__(schema, **options)
        self.origins = origins
        self.http_rules = http_rules or HttpRules()
        self.compiled = compiled
        self.max_frame_bytes = max_frame_bytes
        self.connections = ConnectionsPerAddress(max_connections_per_address)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.serve_http(scope, receive, send)
            return
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        address = client_address(scope)
        if not self.connections.admit(address):
            await self._refuse_websocket(WebSocket(scope, receive, send))
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.connections.release(address)

    async def _refuse_websocket(self, websocket: WebSocket) -> None:
        """Accepted (with the client's sub-protocol, or browsers report only a failed
        handshake), then closed with a code the client can read and retry on."""
        subprotocol = await self.pick_websocket_subprotocol(websocket)
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(
            TRY_AGAIN_LATER,
            f"too many websockets from this address (at most {self.connections.cap})",
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        shared: AppDependencies = request.app.state.dependencies
        request_id = correlation_id(request)
        if isinstance(response, Response):
            response.headers["X-Request-ID"] = request_id
        return Context(
            request=request,
            response=response,
            bus=shared.bus,
            tokens=shared.tokens,
            consistency=shared.consistency,
            queries=shared.queries,
            throttles=shared.throttles,
            correlation_id=request_id,
            authorization=request.headers.get("authorization"),
            consistency_token=request.headers.get(CONSISTENCY_HEADER),
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

    def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
        """A cross-origin handshake: the origins CORS allows (app.origins), no others."""
        return self.origins.allows(origin)

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our GraphiQL page, every asset served from here (app.graphiql), not a CDN's."""
        return page_response()

    def encode_json(self, data: object) -> str:
        # Text, not bytes: websocket messages must travel in text frames for browser clients.
        return orjson.dumps(data).decode()

    def parse_json(self, data: str | bytes) -> Any:
        """A coded 400, not a 500, for JSON that does not parse (multipart parts, when on;
        bodies and GET parameters are parsed in app/graphql_http/requests.py)."""
        try:
            return orjson.loads(data)  # refuses invalid UTF-8 and NaN too
        except orjson.JSONDecodeError:
            raise bad_request("Unable to parse the JSON in the request") from None
