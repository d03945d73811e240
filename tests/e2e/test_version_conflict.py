"""changeProductPrice with expectedVersion: optimistic concurrency for catalog edits."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Api
from tests.support import CHANGE_PRICE, count_events, event_count, new_product, product_row


async def change_price(
    api: Api, admin_token: str, product_id: str, price_cents: int, expected_version: int
) -> dict[str, object]:
    data = await api.client.data(
        CHANGE_PRICE,
        {
            "input": {
                "productId": product_id,
                "priceCents": price_cents,
                "expectedVersion": expected_version,
            }
        },
        admin_token,
    )
    result: dict[str, object] = data["changeProductPrice"]
    return result


async def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(
    api: Api, admin_token: str, engine: AsyncEngine
) -> None:
    product = await new_product(api.client, admin_token, price_cents=1000)
    changed = await change_price(api, admin_token, product["id"], 1100, expected_version=1)
    before = await product_row(engine, product["id"])
    events = await event_count(engine)

    stale = await change_price(api, admin_token, product["id"], 1200, expected_version=1)
    ahead = await change_price(api, admin_token, product["id"], 1300, expected_version=3)

    assert changed["__typename"] == "ProductSuccess"
    assert stale["__typename"] == "VersionConflictError"
    assert (stale["code"], stale["expectedVersion"], stale["actualVersion"]) == (
        "VERSION_CONFLICT",
        1,
        2,
    )
    assert ahead["__typename"] == "VersionConflictError"
    assert (ahead["expectedVersion"], ahead["actualVersion"]) == (3, 2)
    assert before == {"stock": 10, "units_sold": 0, "price_cents": 1100, "version": 2}
    assert await product_row(engine, product["id"]) == before
    assert await event_count(engine) == events


@pytest.mark.parametrize("contenders", [2, 8])
async def test_of_concurrent_changes_from_the_same_version_exactly_one_wins(
    api: Api, admin_token: str, engine: AsyncEngine, contenders: int
) -> None:
    product = await new_product(api.client, admin_token, price_cents=1000)
    prices = [2000 + n for n in range(contenders)]

    results = await asyncio.gather(
        *(change_price(api, admin_token, product["id"], price, 1) for price in prices)
    )

    assert Counter(r["__typename"] for r in results) == {
        "ProductSuccess": 1,
        "VersionConflictError": contenders - 1,
    }
    (winner,) = (price for price, r in zip(prices, results, strict=True) if "product" in r)
    conflicts = [r for r in results if r["__typename"] == "VersionConflictError"]
    assert all((r["expectedVersion"], r["actualVersion"]) == (1, 2) for r in conflicts)
    row = await product_row(engine, product["id"])
    assert (row["price_cents"], row["version"]) == (winner, 2)
    changes = await count_events(engine, "ProductPriceChanged", {"product_id": product["id"]})
    assert changes == 1
