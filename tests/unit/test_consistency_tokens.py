"""Consistency tokens (schema/consistency.py), their keys (app/settings.py) and the log-head
check (reads/consistency.py): no services needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.settings import Settings
from reads.consistency import LogHead, PositionNotCommitted
from schema.consistency import MAX_POSITION, ConsistencyTokens
from schema.errors import ApiError

KEY = b"k" * 32
OLD_KEY = b"o" * 32
OTHER_KEY = b"x" * 32
SECRET = "unit-test-secret-of-at-least-32-characters"
URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

hermetic = hypothesis_settings(database=None, deadline=None)


def settings_of(**values: Any) -> Settings:
    """Settings from the given values and the environment, never from a .env file."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def refused(tokens: ConsistencyTokens, token: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        tokens.position(token)
    assert caught.value.code == "BAD_USER_INPUT"
    assert "consistency token" in str(caught.value)
    return caught.value


# --- issue and verify ----------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 1, 42, 2**31, MAX_POSITION])
def test_a_token_verifies_to_its_position(position: int) -> None:
    tokens = ConsistencyTokens([KEY])
    token = tokens.issue(position)
    assert tokens.position(token) == position
    assert set(token) <= URLSAFE  # fits a header and a URL as it is


@hermetic
@given(st.integers(min_value=0, max_value=MAX_POSITION))
def test_every_position_roundtrips(position: int) -> None:
    tokens = ConsistencyTokens([KEY])
    assert tokens.position(tokens.issue(position)) == position


@pytest.mark.parametrize("position", [-1, MAX_POSITION + 1])
def test_no_token_is_issued_for_a_position_the_log_cannot_hold(position: int) -> None:
    with pytest.raises(ValueError, match="event-log position"):
        ConsistencyTokens([KEY]).issue(position)


# --- refused: forged, altered, truncated, re-encoded, old-format ---------------------


def test_a_token_signed_with_another_key_is_refused() -> None:
    refused(ConsistencyTokens([KEY]), ConsistencyTokens([OTHER_KEY]).issue(7))


def test_every_single_character_change_is_refused() -> None:
    tokens = ConsistencyTokens([KEY])
    token = tokens.issue(123_456)
    for index, char in enumerate(token):
        for other in ("A", "z", "-", "_", "0"):
            if other != char:
                refused(tokens, token[:index] + other + token[index + 1 :])


@pytest.mark.parametrize("delta", [1, 10**9, MAX_POSITION - 5])
def test_a_position_moved_under_the_same_signature_is_refused(delta: int) -> None:
    tokens = ConsistencyTokens([KEY])
    data = raw(tokens.issue(5))
    version, key_id, position = struct.unpack(">B4sQ", data[:13])
    moved = struct.pack(">B4sQ", version, key_id, position + delta) + data[13:]
    refused(tokens, b64(moved))


def test_every_truncation_and_extension_is_refused() -> None:
    tokens = ConsistencyTokens([KEY])
    token = tokens.issue(99)
    for length in range(len(token)):
        refused(tokens, token[:length])
    for extra in ("A", "AA", "AAAA", "="):
        refused(tokens, token + extra)


def test_only_the_canonical_spelling_is_accepted() -> None:
    tokens = ConsistencyTokens([KEY])
    for position in range(64):  # enough tokens to hit "-", "_" and every last character
        token = tokens.issue(position)
        data = raw(token)
        standard = base64.b64encode(data).decode()
        spellings = {
            token + "=",
            base64.urlsafe_b64encode(data).decode(),  # padded
            standard,
            standard.rstrip("="),
            f" {token}",
            f"{token}\n",
            token.swapcase(),
        }
        # The last character carries unused low bits: a neighbour may decode alike.
        last = b64(data)[-1]
        alphabet = sorted(URLSAFE)
        spellings.add(token[:-1] + alphabet[(alphabet.index(last) + 1) % 64])
        for spelling in spellings - {token}:
            refused(tokens, spelling)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "!!!",
        b64(b"pos:7"),  # the unsigned format this API issued before
        b64(b"pos:" + b"9" * 40),
        b64(b"\x00" * 29),
        "A" * 39,
        "A" * 10_000,
    ],
)
def test_garbage_and_old_format_tokens_are_refused(token: str) -> None:
    refused(ConsistencyTokens([KEY]), token)


def test_a_token_of_another_version_is_refused_even_when_correctly_signed() -> None:
    tokens = ConsistencyTokens([KEY])
    key_id = raw(tokens.issue(1))[1:5]
    header = struct.pack(">B4sQ", 2, key_id, 1)
    mac = hmac.new(KEY, b"shop/consistency-token/v1\x00" + header, hashlib.sha256).digest()
    refused(tokens, b64(header + mac[:16]))


def test_a_token_that_is_not_a_string_is_refused() -> None:
    refused(ConsistencyTokens([KEY]), 7)  # type: ignore[arg-type]


# --- rotation ------------------------------------------------------------------------


def test_tokens_signed_with_the_previous_key_still_verify_after_rotation() -> None:
    before = ConsistencyTokens([OLD_KEY])
    after = ConsistencyTokens([KEY, OLD_KEY])
    in_flight = before.issue(41)

    assert after.position(in_flight) == 41
    fresh = after.issue(42)
    assert after.position(fresh) == 42
    refused(before, fresh)  # the first key signs
    assert ConsistencyTokens([KEY]).position(fresh) == 42


def test_a_retired_key_no_longer_verifies() -> None:
    in_flight = ConsistencyTokens([OLD_KEY]).issue(41)
    refused(ConsistencyTokens([KEY]), in_flight)


def test_a_key_ring_needs_a_key_and_no_key_twice() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        ConsistencyTokens([])
    with pytest.raises(ValueError, match="same"):
        ConsistencyTokens([KEY, OLD_KEY, KEY])


# --- keys from settings --------------------------------------------------------------


def test_without_keys_one_is_derived_from_the_jwt_secret_but_is_not_it() -> None:
    settings = settings_of(jwt_secret=SECRET)
    other = settings_of(jwt_secret=SECRET + "-rotated")

    (key,) = settings.consistency_keys()
    assert key != SECRET.encode()
    assert SECRET.encode() not in key
    assert settings_of(jwt_secret=SECRET).consistency_keys() == [key]
    assert other.consistency_keys() != [key]
    # A JWT signature made with JWT_SECRET is no consistency-token MAC, and back.
    refused(
        ConsistencyTokens(settings.consistency_keys()),
        ConsistencyTokens([SECRET.encode()]).issue(3),
    )


def test_configured_keys_sign_with_the_first_and_verify_with_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    derived = settings_of(jwt_secret=SECRET).consistency_keys()
    monkeypatch.setenv("CONSISTENCY_TOKEN_KEYS", f'["{KEY.decode()}", "{OLD_KEY.decode()}"]')
    settings = settings_of(jwt_secret=SECRET)

    assert settings.consistency_keys() == [KEY, OLD_KEY, *derived]
    tokens = ConsistencyTokens(settings.consistency_keys())
    assert tokens.position(ConsistencyTokens([OLD_KEY]).issue(8)) == 8
    # Tokens signed before keys were configured still verify.
    assert tokens.position(ConsistencyTokens(derived).issue(10)) == 10
    assert ConsistencyTokens([KEY]).position(tokens.issue(9)) == 9
    assert KEY.decode() not in repr(settings)  # secrets stay out of logs


def test_production_may_rely_on_the_key_derived_from_its_own_jwt_secret() -> None:
    settings = settings_of(environment="production", jwt_secret=SECRET)
    assert len(settings.consistency_keys()) == 1


@pytest.mark.parametrize(
    ("keys", "message"),
    [(["short"], "at least 32 characters"), ([KEY.decode(), KEY.decode()], "same key twice")],
)
def test_weak_or_repeated_keys_are_refused_at_start_up(keys: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings_of(jwt_secret=SECRET, consistency_token_keys=keys)


# --- the log-head check --------------------------------------------------------------


async def test_a_position_beyond_the_log_head_is_refused_reading_it_only_when_needed() -> None:
    reads: list[int] = []
    head = [10]

    async def read_head() -> int:
        reads.append(head[0])
        return head[0]

    log_head = LogHead(read_head)
    await log_head.check(10)
    await log_head.check(3)
    assert reads == [10]  # the second position was known to be committed

    with pytest.raises(PositionNotCommitted, match="position 11"):
        await log_head.check(11)
    head[0] = 11
    await log_head.check(11)
    await log_head.check(11)
    assert reads == [10, 10, 11]
