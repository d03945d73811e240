"""Which browser origins may call the API: one policy for CORS over HTTP and for the
websocket handshake's Origin check, so a frontend allowed to query can also subscribe.

Loopback origins (any port on localhost, 127.0.0.1 or [::1]) are allowed in development by
default: a frontend's dev server (Vite, Next) runs on another port than the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from strawberry.http.websocket_origin import normalize_allowed_origins, normalize_origin

from app.settings import Settings

LOOPBACK_ORIGIN = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?"
# What a browser may read of a cross-origin response besides the safelisted headers.
EXPOSED_HEADERS = ["x-request-id"]


@dataclass(frozen=True)
class BrowserOrigins:
    origins: frozenset[str]
    loopback: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> BrowserOrigins:
        listed = normalize_allowed_origins([*settings.cors_origins, *settings.ws_allowed_origins])
        return cls(listed, settings.cors_loopback_allowed)

    def allows(self, origin: str) -> bool:
        if "*" in self.origins:
            return True
        normalized = normalize_origin(origin)
        if normalized is None:
            return False
        return normalized in self.origins or (
            self.loopback and re.fullmatch(LOOPBACK_ORIGIN, normalized) is not None
        )

    def cors_middleware(self, settings: Settings) -> Middleware:
        """CORS for /graphql and the rest; a refused origin's preflight gets a 400 that
        says so (and no Access-Control-Allow-Origin), never a 405."""
        return Middleware(
            CORSMiddleware,
            allow_origins=sorted(self.origins),
            allow_origin_regex=LOOPBACK_ORIGIN if self.loopback else None,
            # PUT and DELETE: graphql-sse's single connection mode reserves and stops with them.
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=settings.cors_allow_headers,
            expose_headers=EXPOSED_HEADERS,
            max_age=settings.cors_max_age_s,
        )
