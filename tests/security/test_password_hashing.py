"""Password work over real HTTP: refused sign-ups hash nothing, and hashes made with older
argon2 parameters are replaced by ours on the next successful log-in."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import PASSWORD, Api, sign_up
from tests.support import LOG_IN, SIGN_UP, unique
from writes.models import Customer

OUR_PARAMETERS = "$argon2id$v=19$m=19456,t=2,p=1$"


def hashes(api: Api) -> int:
    computed: int = api.app.state.dependencies.bus.passwords.computed
    return computed


async def stored_hash(engine: AsyncEngine, email: str) -> str:
    async with engine.connect() as conn:
        found = await conn.scalar(select(Customer.password_hash).where(Customer.email == email))
    assert found is not None, email
    return found


@pytest.mark.parametrize(
    ("fields", "typename"),
    [
        ({"name": "   "}, "ValidationError"),
        ({"name": "Nul\x00Name"}, "ValidationError"),
        ({"email": "not an address"}, "ValidationError"),
        ({"password": "short"}, "ValidationError"),
        ({"email": "<taken>"}, "EmailTakenError"),
    ],
    ids=["blank name", "NUL in name", "bad email", "short password", "email taken"],
)
async def test_a_refused_sign_up_hashes_nothing(
    api: Api, fields: dict[str, Any], typename: str
) -> None:
    taken = await sign_up(api)
    fields = {k: taken.email if v == "<taken>" else v for k, v in fields.items()}
    email = f"{unique('nohash')}@example.com"
    before = hashes(api)

    data = await api.client.data(
        SIGN_UP, {"input": {"email": email, "name": "Val", "password": PASSWORD} | fields}
    )

    assert data["signUp"]["__typename"] == typename, data
    assert hashes(api) == before


async def test_a_hash_with_older_parameters_is_replaced_on_log_in(
    api: Api, engine: AsyncEngine
) -> None:
    customer = await sign_up(api)
    assert (await stored_hash(engine, customer.email)).startswith(OUR_PARAMETERS)
    library_defaults = PasswordHasher().hash(PASSWORD)  # 64 MiB, t=3, p=4
    async with engine.begin() as conn:
        await conn.execute(
            update(Customer)
            .where(Customer.email == customer.email)
            .values(password_hash=library_defaults)
        )

    data = await api.client.data(LOG_IN, {"input": {"email": customer.email, "password": PASSWORD}})

    assert data["logIn"]["__typename"] == "AuthSuccess", data
    upgraded = await stored_hash(engine, customer.email)
    assert upgraded.startswith(OUR_PARAMETERS)
    assert PasswordHasher().verify(upgraded, PASSWORD)
    again = await api.client.data(
        LOG_IN, {"input": {"email": customer.email, "password": PASSWORD}}
    )
    assert again["logIn"]["__typename"] == "AuthSuccess", again
