"""Throttles on logIn and signUp, over real HTTP, counted in the real Redis.

Each test serves apps of its own with small limits and a Redis prefix of its own (the
session's app has generous ones, see tests/conftest.py), so the limits are exact. Client
addresses come from X-Forwarded-For, which uvicorn applies to connections from
127.0.0.1, its default trusted proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.asgi import create_app
from app.settings import Settings
from tests.conftest import PASSWORD, Api, sign_up
from tests.support import GraphQLClient, free_port, serving, unique
from writes.models import Customer

AUTH_RESULT = """
    __typename
    ... on AuthSuccess { token customer { id } }
    ... on UserError { code message }
    ... on RateLimitedError { retryAfterSeconds }
"""
LOG_IN = f"mutation($input: LogInInput!) {{ logIn(input: $input) {{ {AUTH_RESULT} }} }}"
SIGN_UP = f"mutation($input: SignUpInput!) {{ signUp(input: $input) {{ {AUTH_RESULT} }} }}"

WINDOW_S = 6
# Waiting for a window to pass: the server's retry-after each time, this many times at most.
RETRIES = 10


def throttled(settings: Settings, prefix: str, **limits: int) -> Settings:
    """The session's settings with these limits, counting under Redis prefix `prefix`."""
    generous = {
        "login_attempts_per_account": 1000,
        "login_attempts_per_address": 1000,
        "signup_attempts_per_address": 1000,
        "login_window_seconds": WINDOW_S,
        "signup_window_seconds": WINDOW_S,
    }
    return settings.model_copy(update={**generous, **limits, "redis_prefix": prefix})


def own_prefix(settings: Settings) -> str:
    # Under the run's prefix, so the session's clean-up deletes the counters too.
    return f"{settings.redis_prefix}:{unique('throttles')}"


@asynccontextmanager
async def api_process(settings: Settings) -> AsyncIterator[tuple[GraphQLClient, Starlette]]:
    """One more API process (an app of its own, on a port of its own) and its client."""
    app = create_app(settings)
    async with serving(app, free_port()) as client:
        yield client, app


def hashes(app: Starlette) -> int:
    """Password hashes (and verifications) the app computed so far."""
    computed: int = app.state.dependencies.bus.passwords.computed
    return computed


async def log_in(
    client: GraphQLClient, email: str, address: str = "10.0.0.1", password: str = PASSWORD
) -> dict[str, Any]:
    body = await client.gql(
        LOG_IN,
        {"input": {"email": email, "password": password}},
        headers={"X-Forwarded-For": address},
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["logIn"]
    return result


async def sign_up_from(client: GraphQLClient, address: str, email: str) -> dict[str, Any]:
    body = await client.gql(
        SIGN_UP,
        {"input": {"email": email, "name": "Tess Throttled", "password": PASSWORD}},
        headers={"X-Forwarded-For": address},
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["signUp"]
    return result


def assert_rate_limited(result: dict[str, Any], quota: str, window_s: int = WINDOW_S) -> int:
    """The retry-after of a RateLimitedError refused by `quota` (e.g. "per account")."""
    assert result["__typename"] == "RateLimitedError", result
    assert result["code"] == "RATE_LIMITED"
    assert quota in result["message"], result
    retry_after: int = result["retryAfterSeconds"]
    assert 1 <= retry_after <= window_s, result
    return retry_after


async def test_the_n_plus_first_log_in_is_refused_by_every_api_process_until_the_window_passes(
    api: Api, settings: Settings
) -> None:
    customer = await sign_up(api)
    own = throttled(settings, own_prefix(settings), login_attempts_per_account=3)
    async with api_process(own) as (first, first_app), api_process(own) as (second, _):
        assert (await log_in(first, customer.email))["__typename"] == "AuthSuccess"
        assert (await log_in(second, customer.email))["__typename"] == "AuthSuccess"
        assert (await log_in(first, customer.email))["__typename"] == "AuthSuccess"
        hashed = hashes(first_app)

        # The fourth is refused by both processes: they count in the same place.
        retry_after = assert_rate_limited(await log_in(second, customer.email), "per account")
        assert_rate_limited(await log_in(first, customer.email), "per account")
        # A different spelling of the same address is the same account.
        assert_rate_limited(await log_in(first, customer.email.upper()), "per account")
        assert hashes(first_app) == hashed  # refused before any password work

        for _ in range(RETRIES):
            await asyncio.sleep(retry_after)  # the wait the server asked for, no more
            result = await log_in(first, customer.email)
            if result["__typename"] != "RateLimitedError":
                break
            retry_after = assert_rate_limited(result, "per account")
        assert result["__typename"] == "AuthSuccess", result
        assert result["customer"]["id"] == customer.id


async def test_per_account_and_per_address_are_counted_separately(
    api: Api, settings: Settings
) -> None:
    customer = await sign_up(api)
    own = throttled(
        settings,
        own_prefix(settings),
        login_attempts_per_account=3,
        login_attempts_per_address=5,
        login_window_seconds=3600,  # nothing may expire while the test counts
    )
    unknown = [f"{unique('nobody')}@example.com" for _ in range(3)]
    async with api_process(own) as (client, _):
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            assert (await log_in(client, customer.email, address))["__typename"] == "AuthSuccess"
        # The account's three are spent, whichever address asks next.
        assert_rate_limited(await log_in(client, customer.email, "10.0.0.4"), "per account", 3600)
        assert_rate_limited(await log_in(client, customer.email, "10.0.0.1"), "per account", 3600)

        # 10.0.0.1 used one of its five, and the refused attempt counted nowhere.
        for email in (*unknown, unknown[0]):
            result = await log_in(client, email, "10.0.0.1")
            assert result["__typename"] == "InvalidCredentialsError", result
        other = f"{unique('nobody')}@example.com"
        assert_rate_limited(await log_in(client, other, "10.0.0.1"), "per address", 3600)
        # ... while another address still gets in with an account that has attempts left.
        result = await log_in(client, other, "10.0.0.5")
        assert result["__typename"] == "InvalidCredentialsError", result


async def test_sign_up_is_throttled_per_address_and_a_refused_one_writes_and_hashes_nothing(
    api: Api, settings: Settings, engine: AsyncEngine
) -> None:
    own = throttled(
        settings, own_prefix(settings), signup_attempts_per_address=2, signup_window_seconds=3600
    )
    emails = [f"{unique('signup')}@example.com" for _ in range(4)]
    async with api_process(own) as (client, app):
        for email in emails[:2]:
            assert (await sign_up_from(client, "10.0.1.1", email))["__typename"] == "AuthSuccess"
        hashed = hashes(app)

        refused = await sign_up_from(client, "10.0.1.1", emails[2])
        assert_rate_limited(refused, "sign-up per address", 3600)
        assert hashes(app) == hashed
        async with engine.connect() as conn:
            stored = await conn.scalar(
                select(func.count()).select_from(Customer).where(Customer.email == emails[2])
            )
        assert stored == 0

        result = await sign_up_from(client, "10.0.1.2", emails[3])
        assert result["__typename"] == "AuthSuccess", result


async def test_twelve_parallel_log_ins_with_a_limit_of_five_admit_exactly_five(
    api: Api, settings: Settings
) -> None:
    customer = await sign_up(api)
    own = throttled(
        settings, own_prefix(settings), login_attempts_per_account=5, login_window_seconds=3600
    )
    async with api_process(own) as (client, app):
        before = hashes(app)
        results = await asyncio.gather(
            *(log_in(client, customer.email, f"10.0.2.{n}") for n in range(12))
        )

        kinds = sorted(result["__typename"] for result in results)
        assert kinds == ["AuthSuccess"] * 5 + ["RateLimitedError"] * 7, results
        assert hashes(app) - before == 5
