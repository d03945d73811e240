"""Read-your-writes on the GraphQL side: the consistency token a client sends (and where in
the request it travels), where an operation's reads were served from, and the
`extensions.consistency` that reports it. The read side's half (waiting for a position,
then the projection or the write store) is reads/consistency.py.

A consistency token is a signed, opaque string naming an event-log position: the URL-safe
base64 (unpadded) of a version byte, the signing key's id, the position and an
HMAC-SHA256 (truncated to 128 bits) over the three. Keys rotate without
breaking tokens in flight: the first key signs, every key verifies, and the key id picks
the one to check with. A client cannot name a position the API did not hand out, so it
cannot make a read wait for, or fall back on, a position that was never committed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strawberry.extensions import SchemaExtension

from schema.errors import ApiError

if TYPE_CHECKING:
    from reads.queries import Served

# Where a client sends the token: this HTTP header, or a websocket's connection_init
# under one of these keys (any letter case; GraphiQL sends its headers pane as they are).
CONSISTENCY_HEADER = "x-consistency-token"
CONSISTENCY_CONNECTION_PARAMS = ("consistencytoken", CONSISTENCY_HEADER)
VERSION = 1
MAX_POSITION = 2**63 - 1  # the event log's BIGINT
_HEADER = struct.Struct(">B4sQ")  # version, key id, position
_MAC_BYTES = 16
_TOKEN_BYTES = _HEADER.size + _MAC_BYTES
_TOKEN_CHARS = -(-_TOKEN_BYTES * 4 // 3)  # unpadded base64
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{_TOKEN_CHARS}}}")
# Domain separation: these keys may be derived from the JWT secret, and a MAC made here
# must never be mistaken for (or be usable as) anything else signed with related keys.
_MAC_DOMAIN = b"shop/consistency-token/v1\x00"
_KEY_ID_DOMAIN = b"shop/consistency-key-id/v1\x00"
REFUSED = (
    "the consistency token is not one this API issued (forged, altered, truncated or from "
    "an older version): send a consistencyToken exactly as a mutation returned it, or none"
)


@dataclass(frozen=True)
class _Key:
    id: bytes
    secret: bytes

    @classmethod
    def of(cls, secret: bytes) -> _Key:
        return cls(hashlib.sha256(_KEY_ID_DOMAIN + secret).digest()[:4], secret)

    def mac(self, header: bytes) -> bytes:
        return hmac.new(self.secret, _MAC_DOMAIN + header, hashlib.sha256).digest()[:_MAC_BYTES]


class ConsistencyTokens:
    """Issues and verifies consistency tokens; built once per process from the settings."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("consistency tokens need at least one key")
        ring = [_Key.of(secret) for secret in keys]
        self._signing = ring[0]
        self._by_id = {key.id: key for key in ring}
        if len(self._by_id) != len(ring):
            raise ValueError("two consistency token keys are the same (or share a key id)")

    def issue(self, position: int) -> str:
        """The token a client sends back to read at least up to `position`."""
        if not 0 <= position <= MAX_POSITION:
            raise ValueError(f"an event-log position is 0..{MAX_POSITION}, not {position}")
        header = _HEADER.pack(VERSION, self._signing.id, position)
        raw = header + self._signing.mac(header)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def position(self, token: str) -> int:
        """The position a genuine token names; ApiError BAD_USER_INPUT for anything else."""
        raw = _decoded(token)
        if raw is not None:
            header, mac = raw[: _HEADER.size], raw[_HEADER.size :]
            version, key_id, position = _HEADER.unpack(header)
            key = self._by_id.get(key_id)
            if (
                version == VERSION
                and key is not None
                and hmac.compare_digest(mac, key.mac(header))
                and position <= MAX_POSITION
            ):
                return int(position)
        raise ApiError("BAD_USER_INPUT", REFUSED)


def _decoded(token: object) -> bytes | None:
    """The token's bytes when it is in canonical form, else None.

    Exactly one spelling of each token is accepted (no padding, no standard-alphabet
    characters, no stray bits in the last character), so a token cannot be varied.
    """
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != token:
        return None
    return raw


class ServedFrom:
    """Where one request's reads were answered from, when its client sent a token: what
    `extensions.consistency` reports and the metrics count (schema/observe.py)."""

    def __init__(self) -> None:
        self._reads: list[Served] = []

    def record(self, served: Served | None) -> None:
        """One read's answer; None (the client sent no token) leaves nothing to report."""
        if served is not None:
            self._reads.append(served)

    def least_fresh(self) -> str | None:
        """ "write_store" when any read fell back, else "waited" when any waited for the
        projection, else "projection"; None when no read was recorded."""
        if not self._reads:
            return None
        if any(read.source == "write_store" for read in self._reads):
            return "write_store"
        return "waited" if any(read.waited for read in self._reads) else "projection"

    def report(self, token: str | None) -> dict[str, str] | None:
        """`extensions.consistency` for a request that sent `token`: the token back, where
        its reads were served from, and the lowest projection position they saw (the
        lowest of any, when every read fell back). None without a token or a read."""
        if token is None or not self._reads:
            return None
        from_write_store = any(read.source == "write_store" for read in self._reads)
        projected = [read.position for read in self._reads if read.source == "projection"]
        return {
            "token": token,
            "servedFrom": "write_store" if from_write_store else "projection",
            "projectionPosition": str(min(projected or [read.position for read in self._reads])),
        }


class ConsistencyReport(SchemaExtension):
    """`extensions.consistency` on responses to queries sent with a consistency token."""

    def get_results(self) -> dict[str, Any]:
        # Duck-typed: a schema may run under another context (exports, tests), with none.
        context = self.execution_context.context
        served_from = getattr(context, "served_from", None)
        if not isinstance(served_from, ServedFrom):
            return {}
        report = served_from.report(context.sent_consistency_token())
        return {} if report is None else {"consistency": report}
