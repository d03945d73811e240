"""placeOrder with an idempotencyKey: retries, concurrent or later, replay the first result."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Api, Customer, sign_up
from tests.support import (
    RESTOCK,
    count_events,
    event_count,
    new_product,
    place_order,
    product_row,
    unique,
)


async def orders_of(engine: AsyncEngine, customer: Customer) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.scalars(
            text("SELECT id::text FROM orders WHERE customer_id = :id"), {"id": customer.id}
        )
        return list(rows)


async def placed_events_of(engine: AsyncEngine, customer: Customer) -> int:
    return await count_events(engine, "OrderPlaced", {"customer": {"id": customer.id}})


async def test_a_retried_order_is_placed_once_and_replayed_identically(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine
) -> None:
    product = await new_product(api.client, admin_token, stock=10)
    key = unique("key")
    lines = [(product["id"], 2)]

    concurrent = await asyncio.gather(
        *(place_order(api.client, customer.token, lines, key) for _ in range(3))
    )
    later = await place_order(api.client, customer.token, lines, key)

    first = concurrent[0]
    assert first["__typename"] == "OrderSuccess", first
    assert concurrent == [first] * 3
    assert later == first
    assert await orders_of(engine, customer) == [first["order"]["id"]]
    assert await placed_events_of(engine, customer) == 1
    assert (await product_row(engine, product["id"]))["stock"] == 8


async def test_the_same_key_for_a_different_order_is_refused(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine
) -> None:
    product = await new_product(api.client, admin_token, stock=10)
    other = await new_product(api.client, admin_token, stock=10)
    key = unique("key")
    placed = await place_order(api.client, customer.token, [(product["id"], 1)], key)
    events = await event_count(engine)

    for lines in ([(product["id"], 2)], [(other["id"], 1)], [(product["id"], 1), (other["id"], 1)]):
        refused = await place_order(api.client, customer.token, lines, key)
        assert refused["__typename"] == "ValidationError", refused
        assert refused["field"] == "idempotencyKey"

    assert placed["__typename"] == "OrderSuccess"
    assert await event_count(engine) == events
    assert (await product_row(engine, product["id"]))["stock"] == 9
    assert (await product_row(engine, other["id"]))["stock"] == 10


async def test_two_customers_using_the_same_key_get_independent_orders(
    api: Api, admin_token: str, engine: AsyncEngine
) -> None:
    product = await new_product(api.client, admin_token, stock=10)
    ann, bob = await sign_up(api, "Ann"), await sign_up(api, "Bob")
    key = unique("shared-key")

    results = await asyncio.gather(
        place_order(api.client, ann.token, [(product["id"], 1)], key),
        place_order(api.client, bob.token, [(product["id"], 1)], key),
    )

    assert [r["__typename"] for r in results] == ["OrderSuccess", "OrderSuccess"]
    ann_order, bob_order = (r["order"] for r in results)
    assert ann_order["id"] != bob_order["id"]
    assert (ann_order["customer"]["id"], bob_order["customer"]["id"]) == (ann.id, bob.id)
    assert await orders_of(engine, ann) == [ann_order["id"]]
    assert await orders_of(engine, bob) == [bob_order["id"]]
    assert (await product_row(engine, product["id"]))["stock"] == 8


async def test_a_failed_keyed_attempt_does_not_use_up_the_key(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine
) -> None:
    product = await new_product(api.client, admin_token, stock=1)
    key = unique("key")
    lines = [(product["id"], 3)]

    refused = await place_order(api.client, customer.token, lines, key)
    restocked = await api.client.data(
        RESTOCK, {"input": {"productId": product["id"], "quantity": 5}}, admin_token
    )
    placed = await place_order(api.client, customer.token, lines, key)
    replayed = await place_order(api.client, customer.token, lines, key)

    assert refused["__typename"] == "InsufficientStockError", refused
    assert restocked["restockProduct"]["product"]["stock"] == 6
    assert placed["__typename"] == "OrderSuccess", placed
    assert replayed == placed
    assert await orders_of(engine, customer) == [placed["order"]["id"]]
    assert (await product_row(engine, product["id"]))["stock"] == 3


async def test_a_key_stored_by_the_codec_before_0065_still_replays_its_first_result(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine
) -> None:
    product = await new_product(api.client, admin_token, stock=10)
    key = unique("key")
    lines = [(product["id"], 2)]
    placed = await place_order(api.client, customer.token, lines, key)
    # Rewrite the stored result as the hand-written codec before decision 0065 wrote it:
    # each line a list of its values, times in ISO-8601 with "+00:00".
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                UPDATE idempotency_keys SET result = jsonb_set(
                    jsonb_set(jsonb_set(result, '{placed_at}', to_jsonb(CAST(:placed_at AS text))),
                              '{updated_at}', to_jsonb(CAST(:placed_at AS text))),
                    '{lines}',
                    (SELECT jsonb_agg(jsonb_build_array(line->'product_id', line->'sku',
                                      line->'name', line->'unit_price_cents', line->'quantity'))
                     FROM jsonb_array_elements(result->'lines') AS line))
                WHERE customer_id = :customer AND key = :key
                """
            ),
            {
                "customer": customer.id,
                "key": key,
                "placed_at": placed["order"]["placedAt"],
            },
        )
        legacy_line = await conn.scalar(
            text(
                "SELECT jsonb_typeof(result->'lines'->0) FROM idempotency_keys"
                " WHERE customer_id = :customer AND key = :key"
            ),
            {"customer": customer.id, "key": key},
        )

    replayed = await place_order(api.client, customer.token, lines, key)

    assert legacy_line == "array"
    assert placed["__typename"] == "OrderSuccess", placed
    assert replayed == placed
    assert await orders_of(engine, customer) == [placed["order"]["id"]]
