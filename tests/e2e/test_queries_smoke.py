"""Queries read the projections; a consistency token makes a client read its own writes."""

from __future__ import annotations

from app.asgi import create_app
from app.bootstrap import build_sync_mongo
from app.settings import Settings
from tests.conftest import Api, Customer
from tests.pipeline import Pipeline
from tests.shop_api import create_product, place
from tests.support import free_port, serving, token_position, unique, without_cost

ORDER = "query($id: ID!) { order(id: $id) { id status totalCents customer { id } lines { sku quantity } } }"


async def test_order_is_read_from_the_projection_with_a_token(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await create_product(api, admin_token, stock=5, price=300)
    placed = await place(api, customer.token, [(product["id"], 2)])
    token = placed["consistencyToken"]

    body = await api.client.gql(
        ORDER, {"id": placed["order"]["id"]}, customer.token, headers={"X-Consistency-Token": token}
    )

    # Straight after the write: the order, from whichever side had it (a race by design).
    assert "errors" not in body, body
    assert body["data"]["order"]["totalCents"] == 600
    assert body["extensions"]["consistency"]["token"] == token
    assert body["extensions"]["consistency"]["servedFrom"] in {"projection", "write_store"}

    # Once the projection holds the write, the same read is the projection's, and says so.
    position = token_position(token)
    await read_side.wait_until_projected(position)
    projected = await api.client.gql(
        ORDER, {"id": placed["order"]["id"]}, customer.token, headers={"X-Consistency-Token": token}
    )
    assert projected["data"] == body["data"]
    # Nothing was written after the order: the projection stands exactly at its position.
    assert projected["extensions"]["consistency"] == {
        "token": token,
        "servedFrom": "projection",
        "projectionPosition": str(position),
    }
    again = await api.client.gql(ORDER, {"id": placed["order"]["id"]}, customer.token)
    assert again["data"] == body["data"]
    assert "consistency" not in again.get("extensions", {})


async def test_a_fresh_read_model_answers_a_search_before_any_worker_ran(
    settings: Settings,
) -> None:
    fresh = settings.model_copy(
        update={"mongodb_database": unique("fresh").replace("-", "_"), "port": free_port()}
    )
    assert fresh.mongodb_url is not None
    try:
        async with serving(create_app(fresh), fresh.port) as client:
            body = await client.gql('{ products(search: "mug") { edges { node { id } } } }')
        assert without_cost(body) == {"data": {"products": {"edges": []}}}
    finally:
        with build_sync_mongo(fresh, patient=True) as mongo:
            mongo.drop_database(fresh.mongodb_database)
