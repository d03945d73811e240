"""The per-request (or per-websocket) context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from reads.queries import ReadQueries
from schema.auth import TokenService, token_expired
from schema.consistency import CONSISTENCY_CONNECTION_PARAMS, ConsistencyTokens, ServedFrom
from schema.limits.config import SharedBudget
from schema.throttling import AuthThrottles
from writes.bus import MessageBus
from writes.commands import Actor


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    bus: MessageBus
    tokens: TokenService
    consistency: ConsistencyTokens
    queries: ReadQueries
    throttles: AuthThrottles
    correlation_id: str
    authorization: str | None = None
    consistency_token: str | None = None
    # Set by strawberry from a websocket's connection_init payload.
    connection_params: dict[str, Any] | None = None
    served_from: ServedFrom = field(default_factory=ServedFrom)
    # The budget a batch's operations share (app/graphql_http/view.py); None: one operation.
    shared_budget: SharedBudget | None = None
    _actor: Actor | None = field(default=None, init=False)
    _actor_known: bool = field(default=False, init=False)
    _expires_at: int | None = field(default=None, init=False)

    def actor(self) -> Actor | None:
        """Who is calling, from the bearer token; raises UNAUTHENTICATED on a bad token."""
        if not self._actor_known:
            identity = self.tokens.identity_from_header(self._authorization())
            self._actor, self._expires_at = (None, None) if identity is None else identity
            self._actor_known = True
        elif self._expires_at is not None and self.tokens.clock() >= self._expires_at:
            # A websocket's context outlives its token: no operation runs on an expired one.
            raise token_expired()
        return self._actor

    def identity_expires_at(self) -> int | None:
        """When the caller's bearer token expires (Unix seconds); None for anonymous callers."""
        if not self._actor_known:
            self.actor()
        return self._expires_at

    def read_position(self) -> int | None:
        """The position named by the client's consistency token, if it sent one."""
        token = self.sent_consistency_token()
        return None if token is None else self.consistency.position(token)

    def client_address(self) -> str:
        """The client's IP address: uvicorn sets it from X-Forwarded-For only when the
        connection comes from one of its trusted proxies (FORWARDED_ALLOW_IPS)."""
        client = self.request.client
        return "unknown" if client is None else client.host

    def _authorization(self) -> str | None:
        if self.authorization is not None:
            return self.authorization
        return self._connection_param("authorization")

    def sent_consistency_token(self) -> str | None:
        """The consistency token from the HTTP header or the websocket's connection_init."""
        if self.consistency_token is not None:
            return self.consistency_token
        return self._connection_param(*CONSISTENCY_CONNECTION_PARAMS)

    def _connection_param(self, *names: str) -> str | None:
        """A connection_init parameter by any of `names`, in any letter case: clients (and
        GraphiQL, which sends its headers pane) pass HTTP header names as they are written."""
        for key, value in (self.connection_params or {}).items():
            if isinstance(key, str) and key.lower() in names and isinstance(value, str):
                return value
        return None


Info = strawberry.Info[Context, None]
