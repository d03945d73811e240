"""The worker projects what commands commit, and verify agrees with the write store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from tests.conftest import Api, Customer
from tests.pipeline import Pipeline, isolated_pipeline
from tests.shop_api import create_product, place
from tests.support import token_position


@pytest_asyncio.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    async with isolated_pipeline(settings) as pipeline:
        yield pipeline


async def test_a_worker_projects_new_orders_and_verify_is_clean(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.start_worker()
    mug = await create_product(api, admin_token, stock=5, price=700)
    placed = await place(api, customer.token, [(mug["id"], 2)])

    await pipeline.wait_until_projected(token_position(placed["consistencyToken"]))

    order = await pipeline.db["orders"].find_one({"_id": placed["order"]["id"]})
    assert order is not None
    assert (order["status"], order["total_cents"]) == ("PLACED", 1400)
    product = await pipeline.db["products"].find_one({"_id": mug["id"]})
    assert product is not None
    assert (product["stock"], product["units_sold"]) == (3, 2)
    assert await pipeline.verify(engine) == {
        name: [] for name in ("orders", "products", "customers", "sales")
    }
