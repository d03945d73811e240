"""Consistency tokens: opaque strings naming an event-log position."""

from __future__ import annotations

import base64
import binascii

from schema.errors import ApiError

_PREFIX = "pos:"


def encode_token(position: int) -> str:
    """The token a client sends back to read at least up to `position`."""
    raw = f"{_PREFIX}{position}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> int:
    """The position a token names; ApiError BAD_USER_INPUT for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        digits = raw.removeprefix(_PREFIX)
        # isdigit() alone also admits non-ASCII digits ("١٢") that int() accepts.
        if raw.startswith(_PREFIX) and digits.isascii() and digits.isdigit():
            return int(digits)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ApiError("BAD_USER_INPUT", "the consistency token is not one this API issued")
