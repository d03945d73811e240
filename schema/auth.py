"""Bearer tokens: HS256 JWTs naming the customer and their role."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt

from schema.errors import ApiError
from writes.commands import Actor, Role

# Tokens verified recently, so a client's every request does not pay for HMAC and JSON
# decoding again (8% of an order(id) request in the profile); expiry is still checked.
VERIFIED_TOKENS = 4096


@dataclass(frozen=True)
class TokenService:
    secret: str
    algorithm: str
    ttl_seconds: int
    issuer: str
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    _verified: OrderedDict[str, tuple[Actor, int]] = field(
        default_factory=OrderedDict, compare=False, repr=False
    )

    def issue(self, customer_id: uuid.UUID, role: str) -> str:
        """A signed token for the customer, valid for ttl_seconds."""
        now = int(self.clock())
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
        return self.identity(token)[0]

    def identity(self, token: str) -> tuple[Actor, int]:
        """The actor a token names and its expiry (Unix seconds); UNAUTHENTICATED when it is
        bad or expired."""
        verified = self._verified.get(token)
        if verified is None:
            verified = self._decode(token)
            self._verified[token] = verified
            if len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        if self.clock() >= verified[1]:
            raise token_expired()
        return verified

    def _decode(self, token: str) -> tuple[Actor, int]:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                options={"require": ["sub", "role", "exp", "iat", "iss"]},
            )
            return Actor(uuid.UUID(claims["sub"]), Role(claims["role"])), int(claims["exp"])
        except jwt.ExpiredSignatureError:
            raise token_expired() from None
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError):
            raise ApiError(
                "UNAUTHENTICATED", "the bearer token is not valid: sign in again"
            ) from None

    def actor_from_header(self, authorization: str | None) -> Actor | None:
        """The actor of an `Authorization: Bearer ...` header; None when there is none."""
        identity = self.identity_from_header(authorization)
        return None if identity is None else identity[0]

    def identity_from_header(self, authorization: str | None) -> tuple[Actor, int] | None:
        """The actor of an `Authorization: Bearer ...` header and its token's expiry; None
        when there is none."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("UNAUTHENTICATED", "the Authorization header must be 'Bearer <token>'")
        return self.identity(token.strip())


def token_expired() -> ApiError:
    return ApiError("UNAUTHENTICATED", "the bearer token has expired: sign in again")
