"""Throttles on what costs CPU or can be guessed: how schema/ asks, not how it is counted.

The counting lives outside schema/ (app/throttles.py keeps it in Redis, shared by every
API process); resolvers see only the Throttle protocol, through the context.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from schema.errors import RateLimitedError


@dataclass(frozen=True)
class Quota:
    """At most `limit` attempts per `window_seconds` for one subject (an address, an account)."""

    name: str  # what is counted, e.g. "log-in per account": part of the key and the message
    subject: str
    limit: int
    window_seconds: int

    @property
    def key(self) -> str:
        # Hashed: keys stay short whatever the client sent, and no email sits in Redis.
        digest = hashlib.sha256(self.subject.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.name.replace(' ', '-')}:{digest[:32]}"


@dataclass(frozen=True)
class Refusal:
    """The quota that refused an attempt, and when it will count one again."""

    quota: Quota
    retry_after_seconds: int


class Throttle(Protocol):
    async def attempt(self, quotas: list[Quota]) -> Refusal | None:
        """Count one attempt against every quota, or none when one of them is spent.

        All or nothing, in one atomic step: parallel attempts never all slip through,
        and an attempt refused by one quota does not use up the others.
        """
        ...


def rate_limited(refusal: Refusal) -> RateLimitedError:
    quota, seconds = refusal.quota, refusal.retry_after_seconds
    return RateLimitedError(
        code="RATE_LIMITED",
        message=(
            f"too many attempts ({quota.name}: {quota.limit} per {quota.window_seconds} s): "
            f"try again in {seconds} s"
        ),
        retry_after_seconds=seconds,
    )


@dataclass(frozen=True)
class AuthThrottles:
    """logIn per account and per client address, signUp per client address (settings)."""

    throttle: Throttle
    log_in_per_account: int
    log_in_per_address: int
    log_in_window_seconds: int
    sign_up_per_address: int
    sign_up_window_seconds: int

    async def log_in(self, account: str, address: str) -> RateLimitedError | None:
        """None when this log-in may go on to verify a password; `account` is normalized."""
        window = self.log_in_window_seconds
        refusal = await self.throttle.attempt(
            [
                Quota("log-in per account", account, self.log_in_per_account, window),
                Quota("log-in per address", address, self.log_in_per_address, window),
            ]
        )
        return None if refusal is None else rate_limited(refusal)

    async def sign_up(self, address: str) -> RateLimitedError | None:
        """None when this sign-up may go on to hash a password."""
        quota = Quota(
            "sign-up per address", address, self.sign_up_per_address, self.sign_up_window_seconds
        )
        refusal = await self.throttle.attempt([quota])
        return None if refusal is None else rate_limited(refusal)
