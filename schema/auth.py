"""Bearer tokens: HS256 JWTs naming the customer and their role."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from schema.errors import ApiError
from writes.commands import Actor, Role


@dataclass(frozen=True)
class TokenService:
    secret: str
    algorithm: str
    ttl_seconds: int
    issuer: str

    def issue(self, customer_id: uuid.UUID, role: str) -> str:
        """A signed token for the customer, valid for ttl_seconds."""
        now = int(time.time())
        claims = {
            "sub": str(customer_id),
            "role": role,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "iss": self.issuer,
        }
        return jwt.encode(claims, self.secret, algorithm=self.algorithm)

    def verify(self, token: str) -> Actor:
        """The actor a token names; ApiError UNAUTHENTICATED when it is bad or expired."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                options={"require": ["sub", "role", "exp", "iat", "iss"]},
            )
            return Actor(uuid.UUID(claims["sub"]), Role(claims["role"]))
        except jwt.ExpiredSignatureError:
            raise ApiError(
                "UNAUTHENTICATED", "the bearer token has expired: sign in again"
            ) from None
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError):
            raise ApiError(
                "UNAUTHENTICATED", "the bearer token is not valid: sign in again"
            ) from None

    def actor_from_header(self, authorization: str | None) -> Actor | None:
        """The actor of an `Authorization: Bearer ...` header; None when there is none."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("UNAUTHENTICATED", "the Authorization header must be 'Bearer <token>'")
        return self.verify(token.strip())
