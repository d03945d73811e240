"""Consistency tokens: signed, opaque strings naming an event-log position.

A token is the URL-safe base64 (unpadded) of a version byte, the signing key's id, the
position and an HMAC-SHA256 (truncated to 128 bits) over the three. Keys rotate without
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

from schema.errors import ApiError

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
