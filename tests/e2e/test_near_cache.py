"""The near cache over real Redis, MongoDB and a worker (reads/near_cache.py): hot
documents answered from the API's memory, never one older than a client's own write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest_asyncio

from app.asgi import create_app
from reads.near_cache import NearCache
from tests.conftest import Api, Customer, sign_up
from tests.pipeline import Pipeline, isolated_pipeline
from tests.shop_api import create_product, place_ok
from tests.support import (
    ORDER_QUERY,
    WAIT_S,
    GraphQLClient,
    free_port,
    serving,
    token_position,
)
from workers.notifications import projections_channel

CANCEL = """mutation($id: ID!) {
  cancelOrder(input: {orderId: $id}) {
    __typename ... on OrderSuccess { consistencyToken order { id status } }
  }
}"""


async def covered(cache: NearCache, position: int) -> None:
    """Until the cache has heard of the orders projection reaching `position`."""
    async with asyncio.timeout(WAIT_S):
        await cache.until_covered("orders", position)


def near_cache(api: Api) -> NearCache:
    cache = api.app.state.dependencies.queries.near_cache
    assert isinstance(cache, NearCache)
    return cache


async def cancel(client: GraphQLClient, token: str, order_id: str) -> str:
    data = await client.data(CANCEL, {"id": order_id}, token)
    assert data["cancelOrder"]["__typename"] == "OrderSuccess", data
    consistency: str = data["cancelOrder"]["consistencyToken"]
    return consistency


async def status(
    client: GraphQLClient, token: str, order_id: str, consistency: str | None = None
) -> tuple[str, dict[str, object]]:
    headers = {} if consistency is None else {"x-consistency-token": consistency}
    body = await client.gql(ORDER_QUERY, {"id": order_id}, token, headers)
    assert "errors" not in body, body
    return body["data"]["order"]["status"], body.get("extensions", {})


async def test_a_cached_order_is_forgotten_when_its_next_batch_is_announced(
    api: Api, admin_token: str, read_side: Pipeline
) -> None:
    cache = near_cache(api)
    customer = await sign_up(api, "Nora Near")
    product = await create_product(api, admin_token)
    placed = await place_ok(api, customer.token, product["id"])
    order_id = placed["order"]["id"]
    await covered(cache, token_position(placed["consistencyToken"]))

    hits = cache.hits
    for _ in range(3):  # the first read stores it (or learns the live collection's name)
        assert (await status(api.client, customer.token, order_id))[0] == "PLACED"
    assert cache.hits > hits  # later ones came from memory

    cancelled = await cancel(api.client, customer.token, order_id)
    await covered(cache, token_position(cancelled))
    # Without a token too: the batch's notification named the order, so it was dropped.
    assert (await status(api.client, customer.token, order_id))[0] == "CANCELLED"
    answered, extensions = await status(api.client, customer.token, order_id, cancelled)
    assert answered == "CANCELLED"
    assert extensions["consistency"]["servedFrom"] == "projection"  # type: ignore[index]


@dataclass
class Isolated:
    api: Api
    pipeline: Pipeline


@pytest_asyncio.fixture
async def isolated(api: Api) -> AsyncIterator[Isolated]:
    """An API with a read side of its own, and a worker the test may stop."""
    async with isolated_pipeline(api.settings) as pipeline:
        port = free_port()
        settings = pipeline.settings.model_copy(update={"port": port})
        app = create_app(settings)
        async with serving(app, port) as client:
            await pipeline.start_worker()
            yield Isolated(Api(client, f"http://127.0.0.1:{port}", settings, app), pipeline)


async def cached_order(
    api: Api, admin_token: str, isolated: Isolated, name: str
) -> tuple[Customer, str]:
    """A new customer's placed order, read once through the isolated API: in its cache."""
    own, cache = isolated.api, near_cache(isolated.api)
    customer = await sign_up(api, name)
    product = await create_product(api, admin_token)
    placed = await place_ok(own, customer.token, product["id"])
    order_id: str = placed["order"]["id"]
    await covered(cache, token_position(placed["consistencyToken"]))
    assert (await status(own.client, customer.token, order_id))[0] == "PLACED"
    assert len(cache) >= 1
    return customer, order_id


async def test_a_token_ahead_of_the_cache_is_never_answered_from_it(
    api: Api, admin_token: str, isolated: Isolated
) -> None:
    own = isolated.api
    customer, order_id = await cached_order(api, admin_token, isolated, "Tom Token")

    for worker in list(isolated.pipeline.workers):
        await isolated.pipeline.kill(worker)
    cancelled = await cancel(own.client, customer.token, order_id)
    # The cache still holds the placed order, and nothing will announce the cancel.
    assert (await status(own.client, customer.token, order_id))[0] == "PLACED"
    answered, extensions = await status(own.client, customer.token, order_id, cancelled)
    assert answered == "CANCELLED"
    assert extensions["consistency"]["servedFrom"] == "write_store"  # type: ignore[index]


async def test_a_missed_notification_empties_the_cache(
    api: Api, admin_token: str, isolated: Isolated
) -> None:
    cache = near_cache(isolated.api)
    await cached_order(api, admin_token, isolated, "Gail Gap")
    heard = cache.covered("orders")
    assert heard is not None

    # A batch beginning past what the cache heard of: one between was never announced.
    gap = {"projection": "orders", "ids": [], "position": heard + 2, "after": heard + 1}
    channel = projections_channel(isolated.pipeline.settings.redis_prefix)
    await isolated.pipeline.redis.publish(channel, orjson.dumps(gap))
    await covered(cache, heard + 2)
    assert len(cache) == 0
