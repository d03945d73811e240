"""The shop as clients of several API processes see it, for the fault tests: an admin,
customers and products made through a chosen `shop serve`, and two workers behind them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.api_servers import ApiServer
from tests.pipeline import Pipeline, Writer
from tests.support import CREATE_PRODUCT, LOG_IN, SIGN_UP, unique
from writes.commands import CreateAdmin
from writes.unit_of_work import CommandMetadata

PASSWORD = "correct-horse-battery"


async def admin_token(engine: AsyncEngine, pipeline: Pipeline, through: ApiServer) -> str:
    """An admin created as `shop admin create` does, logged in through `through`."""
    assert pipeline.settings.redis_url is not None
    email = f"{unique('admin')}@example.com"
    writer = Writer(engine, pipeline.settings.redis_url, pipeline.settings.redis_prefix)
    try:
        await writer.bus.handle(
            CreateAdmin(email, "Ada Admin", PASSWORD), CommandMetadata(None, unique("test"))
        )
    finally:
        await writer.close()
    data = await through.client.data(LOG_IN, {"input": {"email": email, "password": PASSWORD}})
    token: str = data["logIn"]["token"]
    return token


@dataclass
class Customer:
    email: str
    token: str


async def sign_up(through: ApiServer) -> Customer:
    email = f"{unique('replica')}@example.com"
    variables = {"input": {"email": email, "name": "Rae Replica", "password": PASSWORD}}
    result = (await through.client.data(SIGN_UP, variables))["signUp"]
    assert result["__typename"] == "AuthSuccess", result
    return Customer(email, result["token"])


async def create_product(through: ApiServer, token: str, stock: int) -> dict[str, Any]:
    variables = {
        "input": {"sku": unique("SKU"), "name": "Replica mug", "priceCents": 900, "stock": stock}
    }
    result = (await through.client.data(CREATE_PRODUCT, variables, token))["createProduct"]
    assert result["__typename"] == "ProductSuccess", result
    product: dict[str, Any] = result["product"]
    return product


async def start_workers(pipeline: Pipeline) -> None:
    # Two workers: the projection leases give each projection one owner between them.
    await asyncio.gather(pipeline.start_worker(), pipeline.start_worker())
