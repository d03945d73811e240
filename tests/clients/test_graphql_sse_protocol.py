"""graphql-sse's own npm client, in distinct and single connection mode, against the live API."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.conftest import Api, Customer
from tests.pipeline import Pipeline
from tests.shop_api import create_product, place_ok

pytestmark = pytest.mark.node

HERE = Path(__file__).parent
BUDGET_S = 90


async def test_the_graphql_sse_client_streams_a_query_and_a_subscription_in_both_modes(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await create_product(api, admin_token, stock=10)
    before = await place_ok(api, customer.token, product["id"])
    env = os.environ | {
        "API_URL": api.base_url,
        "CUSTOMER_TOKEN": customer.token,
        "PRODUCT_ID": product["id"],
        "AFTER_TOKEN": before["consistencyToken"],
    }
    node = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "sse_protocol.mjs"),
        cwd=HERE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(BUDGET_S):
            out, err = await node.communicate()
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    assert node.returncode == 0, (out.decode(), err.decode())
