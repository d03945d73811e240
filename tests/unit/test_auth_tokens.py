"""Bearer tokens (schema/auth.py) and the JWT secret guard (app/settings.py): no services
needed. Consistency tokens have tests/unit/test_consistency_tokens.py."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from app.settings import DEFAULT_JWT_SECRET, Settings
from schema.auth import TokenService
from schema.errors import ApiError
from writes.commands import Actor, Role

SECRET = "unit-test-secret-of-at-least-32-characters"
OTHER_SECRET = "another-secret-that-is-also-long-enough-000"
ISSUER = "shop-api"


def service(**overrides: Any) -> TokenService:
    fields: dict[str, Any] = {
        "secret": SECRET,
        "algorithm": "HS256",
        "ttl_seconds": 3600,
        "issuer": ISSUER,
    }
    return TokenService(**{**fields, **overrides})


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": str(uuid.uuid4()),
        "role": "CUSTOMER",
        "iat": now,
        "exp": now + 3600,
        "iss": ISSUER,
    }
    return {key: value for key, value in {**base, **overrides}.items() if value is not None}


def settings_of(**values: Any) -> Settings:
    """Settings from the given values and the environment, never from a .env file."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unauthenticated(call: Callable[[], object]) -> ApiError:
    with pytest.raises(ApiError) as refused:
        call()
    assert refused.value.code == "UNAUTHENTICATED"
    assert "sign in" in str(refused.value) or "Bearer" in str(refused.value)
    return refused.value


# --- TokenService ------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.ADMIN])
def test_an_issued_token_verifies_to_its_customer_and_role(role: Role) -> None:
    customer_id = uuid.uuid4()
    tokens = service()

    actor = tokens.verify(tokens.issue(customer_id, role.value))

    assert actor == Actor(customer_id, role)


def test_an_issued_token_expires_after_the_ttl() -> None:
    token = service(ttl_seconds=120).issue(uuid.uuid4(), "CUSTOMER")
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], issuer=ISSUER)
    assert decoded["exp"] - decoded["iat"] == 120


def test_the_authorization_header_names_the_actor() -> None:
    customer_id = uuid.uuid4()
    tokens = service()
    token = tokens.issue(customer_id, "ADMIN")

    for header in (f"Bearer {token}", f"bearer {token}", f"Bearer   {token}  "):
        assert tokens.actor_from_header(header) == Actor(customer_id, Role.ADMIN)


@pytest.mark.parametrize("header", [None, ""])
def test_no_authorization_header_is_anonymous(header: str | None) -> None:
    assert service().actor_from_header(header) is None


def test_a_tampered_signature_is_refused() -> None:
    token = service().issue(uuid.uuid4(), "CUSTOMER")
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    unauthenticated(lambda: service().verify(f"{head}.{payload}.{flipped}"))


def test_a_tampered_payload_is_refused() -> None:
    token = service().issue(uuid.uuid4(), "CUSTOMER")
    head, _payload, signature = token.split(".")
    forged = _b64(json.dumps(claims(role="ADMIN")).encode())

    unauthenticated(lambda: service().verify(f"{head}.{forged}.{signature}"))


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = service(secret=OTHER_SECRET).issue(uuid.uuid4(), "ADMIN")
    unauthenticated(lambda: service().verify(token))


def test_a_token_signed_with_another_algorithm_is_refused() -> None:
    secret = "k" * 64  # long enough for HS512 too
    token = jwt.encode(claims(), secret, algorithm="HS512")
    unauthenticated(lambda: service(secret=secret).verify(token))


def test_an_expired_token_is_refused_saying_so() -> None:
    token = service(ttl_seconds=-60).issue(uuid.uuid4(), "CUSTOMER")
    error = unauthenticated(lambda: service().verify(token))
    assert "expired" in str(error)


@pytest.mark.parametrize("missing", ["sub", "role", "exp", "iat", "iss"])
def test_a_token_missing_a_claim_is_refused(missing: str) -> None:
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256")
    unauthenticated(lambda: service().verify(token))


@pytest.mark.parametrize(
    "bad",
    [
        {"iss": "someone-else"},
        {"sub": "not-a-uuid"},
        {"role": "ROOT"},
        {"role": "customer"},
        {"iat": int(time.time()) + 3600},
    ],
)
def test_a_token_with_a_wrong_claim_is_refused(bad: dict[str, object]) -> None:
    token = jwt.encode(claims(**bad), SECRET, algorithm="HS256")
    unauthenticated(lambda: service().verify(token))


def test_an_unsigned_alg_none_token_is_refused() -> None:
    token = jwt.encode(claims(role="ADMIN"), key=None, algorithm="none")
    assert token.endswith(".")
    unauthenticated(lambda: service().verify(token))


@pytest.mark.parametrize("keep_signature", [False, True])
def test_an_alg_none_header_on_a_signed_token_is_refused(keep_signature: bool) -> None:
    signed = service().issue(uuid.uuid4(), "ADMIN")
    _head, payload, signature = signed.split(".")
    none_head = _b64(b'{"alg":"none","typ":"JWT"}')
    token = f"{none_head}.{payload}.{signature if keep_signature else ''}"
    unauthenticated(lambda: service().verify(token))


@pytest.mark.parametrize(
    "garbage", ["", "garbage", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9", "Bearer", "\x00\xff"]
)
def test_garbage_is_refused(garbage: str) -> None:
    unauthenticated(lambda: service().verify(garbage))


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Token {token}",
        "{token}",
        "Bearer",
        "Bearer ",
        "Bearer: {token}",
        "Bearer garbage",
    ],
)
def test_a_malformed_authorization_header_is_refused(header: str) -> None:
    token = service().issue(uuid.uuid4(), "CUSTOMER")
    unauthenticated(lambda: service().actor_from_header(header.format(token=token)))


# --- Settings: the JWT secret guard ------------------------------------------------


def test_production_refuses_the_default_jwt_secret() -> None:
    with pytest.raises(ValidationError) as refused:
        settings_of(environment="production", jwt_secret=DEFAULT_JWT_SECRET)
    assert "JWT_SECRET" in str(refused.value)
    assert "production" in str(refused.value)


def test_production_accepts_a_long_own_secret() -> None:
    settings = settings_of(environment="production", jwt_secret=SECRET)
    assert settings.jwt_secret == SECRET
    assert not settings.is_development


def test_development_may_use_the_default_secret() -> None:
    settings = settings_of(environment="development", jwt_secret=DEFAULT_JWT_SECRET)
    assert settings.jwt_secret == DEFAULT_JWT_SECRET


@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_jwt_secret_shorter_than_32_characters_is_refused(environment: str) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_of(environment=environment, jwt_secret="s" * 31)
    assert "JWT_SECRET" in str(refused.value)
    assert "32" in str(refused.value)
    assert settings_of(environment=environment, jwt_secret="s" * 32)


@pytest.mark.parametrize(("algorithm", "minimum"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_the_secret_is_at_least_as_long_as_the_algorithms_digest(
    algorithm: str, minimum: int
) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_of(jwt_algorithm=algorithm, jwt_secret="s" * (minimum - 1))
    assert "JWT_SECRET" in str(refused.value)
    assert str(minimum) in str(refused.value)

    settings = settings_of(jwt_algorithm=algorithm, jwt_secret="s" * minimum)
    # PyJWT warns about a key shorter than the digest; warnings are errors here.
    tokens = TokenService(settings.jwt_secret, settings.jwt_algorithm, 60, ISSUER)
    customer_id = uuid.uuid4()
    assert tokens.verify(tokens.issue(customer_id, "CUSTOMER")).customer_id == customer_id


def test_production_reads_the_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        settings_of()
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert settings_of().jwt_secret == SECRET


def test_a_verified_token_is_remembered_but_still_expires() -> None:
    """Verification is cached per token; the cached entry still honours `exp`."""
    offset = [0.0]
    tokens = service(ttl_seconds=60, clock=lambda: time.time() + offset[0])
    customer = uuid.uuid4()
    token = tokens.issue(customer, "CUSTOMER")

    assert tokens.verify(token) == Actor(customer, Role.CUSTOMER)
    assert tokens.verify(token) == Actor(customer, Role.CUSTOMER)
    offset[0] = 61.0
    with pytest.raises(ApiError, match="expired"):
        tokens.verify(token)
    # A bad token is never remembered as good.
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    offset[0] = 0.0
    for _ in range(2):
        with pytest.raises(ApiError, match="not valid"):
            tokens.verify(tampered)
