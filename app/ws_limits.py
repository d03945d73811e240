"""Open websockets per client address, counted in this process (decision 0027)."""

from __future__ import annotations

from collections import Counter

from starlette.types import Scope

TRY_AGAIN_LATER = 1013  # RFC 6455 registry: graphql-ws clients retry it with back-off


def client_address(scope: Scope) -> str:
    """The peer's address as the server saw it (uvicorn puts a trusted proxy's
    X-Forwarded-For there: FORWARDED_ALLOW_IPS)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ConnectionsPerAddress:
    """How many websockets each address holds open; admits one more only under the cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: Counter[str] = Counter()

    def admit(self, address: str) -> bool:
        if self._open[address] >= self.cap:
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]

    def open_from(self, address: str) -> int:
        return self._open[address]
