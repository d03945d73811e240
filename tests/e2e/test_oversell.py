"""Concurrent orders over HTTP never sell more than the stock, and never deadlock."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Api, sign_up
from tests.support import count_events, new_product, place_order, product_row

CUSTOMERS = 10
ATTEMPTS_PER_CUSTOMER = 10
STOCK = 10


async def test_a_hundred_concurrent_orders_for_ten_units_sell_exactly_ten(
    api: Api, admin_token: str, engine: AsyncEngine
) -> None:
    product = await new_product(api.client, admin_token, stock=STOCK)
    customers = await asyncio.gather(*(sign_up(api) for _ in range(CUSTOMERS)))

    results = await asyncio.gather(
        *(
            place_order(api.client, customer.token, [(product["id"], 1)])
            for customer in customers
            for _ in range(ATTEMPTS_PER_CUSTOMER)
        )
    )

    outcomes = Counter(result["__typename"] for result in results)
    assert outcomes == {"OrderSuccess": STOCK, "InsufficientStockError": 90}
    refusals = {
        (r["productId"], r["requested"], r["available"])
        for r in results
        if r["__typename"] == "InsufficientStockError"
    }
    assert refusals == {(product["id"], 1, 0)}
    sold = [r["order"] for r in results if r["__typename"] == "OrderSuccess"]
    assert len({order["id"] for order in sold}) == STOCK
    assert await product_row(engine, product["id"]) == {
        "stock": 0,
        "units_sold": STOCK,
        "price_cents": product["priceCents"],
        "version": product["version"],
    }
    placed = {"lines": [{"product_id": product["id"]}]}
    assert await count_events(engine, "OrderPlaced", placed) == STOCK


async def test_orders_locking_the_same_products_in_opposite_orders_all_complete(
    api: Api, admin_token: str, engine: AsyncEngine
) -> None:
    """[A, B, C] and [C, B, A] at once: locks taken in line order would deadlock."""
    rounds = 10
    products = [await new_product(api.client, admin_token, stock=100) for _ in range(3)]
    forward = [(p["id"], 1) for p in products]
    customers = await asyncio.gather(*(sign_up(api) for _ in range(4)))

    results = await asyncio.gather(
        *(
            place_order(api.client, customer.token, lines)
            for _ in range(rounds)
            for customer in customers
            for lines in (forward, forward[::-1])
        )
    )

    orders = rounds * len(customers) * 2
    assert Counter(r["__typename"] for r in results) == {"OrderSuccess": orders}
    for product in products:
        row = await product_row(engine, product["id"])
        assert (row["stock"], row["units_sold"]) == (100 - orders, orders)
        placed = {"lines": [{"product_id": product["id"]}]}
        assert await count_events(engine, "OrderPlaced", placed) == orders
