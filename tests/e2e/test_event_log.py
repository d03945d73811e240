"""After a scripted session the event log holds exactly what the accepted commands did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.conftest import Api, sign_up
from tests.shop_api import create_product, place
from tests.support import (
    CANCEL_ORDER,
    CHANGE_PRICE,
    RESTOCK,
    SHIP_ORDER,
    error_codes,
    token_position,
)
from writes.models import EventRecord


async def _events_after(engine: AsyncEngine, position: int) -> list[EventRecord]:
    async with AsyncSession(engine) as session:
        rows = await session.scalars(
            select(EventRecord)
            .where(EventRecord.position > position)
            .order_by(EventRecord.position)
        )
        return list(rows)


async def _head(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(EventRecord.position).order_by(EventRecord.position.desc()).limit(1)
        )
        return int(rows.scalar() or 0)


async def test_a_scripted_session_leaves_exactly_its_events_in_commit_order(
    api: Api, admin_token: str, engine: AsyncEngine
) -> None:
    start = await _head(engine)
    customer = await sign_up(api, "Eve Eventful")
    mug = await create_product(api, admin_token, stock=5, price=1000)
    tea = await create_product(api, admin_token, stock=2, price=300)
    price = await api.client.data(
        CHANGE_PRICE, {"input": {"productId": mug["id"], "priceCents": 1100}}, admin_token
    )
    refused_price = await api.client.data(
        CHANGE_PRICE,
        {"input": {"productId": mug["id"], "priceCents": 5, "expectedVersion": 1}},
        admin_token,
    )
    restock = await api.client.data(
        RESTOCK, {"input": {"productId": tea["id"], "quantity": 3}}, admin_token
    )
    first = await place(api, customer.token, [(mug["id"], 2), (tea["id"], 1)])
    refused_order = await place(api, customer.token, [(tea["id"], 99)])
    second = await place(api, customer.token, [(tea["id"], 2)])
    forbidden = await api.client.gql(
        SHIP_ORDER, {"input": {"orderId": first["order"]["id"]}}, customer.token
    )
    cancel = await api.client.data(
        CANCEL_ORDER, {"input": {"orderId": first["order"]["id"]}}, customer.token
    )
    ship = await api.client.data(
        SHIP_ORDER, {"input": {"orderId": second["order"]["id"]}}, admin_token
    )

    assert refused_price["changeProductPrice"]["__typename"] == "VersionConflictError"
    assert refused_order["__typename"] == "InsufficientStockError"
    assert error_codes(forbidden) == ["FORBIDDEN"]

    events = await _events_after(engine, start)
    assert [(e.type, str(e.stream_id), e.stream_version) for e in events] == [
        ("CustomerRegistered", customer.id, 1),
        ("ProductCreated", mug["id"], 1),
        ("ProductCreated", tea["id"], 1),
        ("ProductPriceChanged", mug["id"], 2),
        ("ProductRestocked", tea["id"], 2),
        ("OrderPlaced", first["order"]["id"], 1),
        ("OrderPlaced", second["order"]["id"], 1),
        ("OrderCancelled", first["order"]["id"], 2),
        ("OrderShipped", second["order"]["id"], 2),
    ]
    positions = [e.position for e in events]
    assert positions == sorted(positions)

    placed: dict[str, Any] = events[5].data
    assert placed == {
        "order_id": first["order"]["id"],
        "customer": {"id": customer.id, "name": "Eve Eventful", "email": customer.email},
        "lines": [
            {
                "product_id": mug["id"],
                "sku": mug["sku"],
                "name": "Blue mug",
                "unit_price_cents": 1100,
                "quantity": 2,
                "line_total_cents": 2200,
            },
            {
                "product_id": tea["id"],
                "sku": tea["sku"],
                "name": "Blue mug",
                "unit_price_cents": 300,
                "quantity": 1,
                "line_total_cents": 300,
            },
        ],
        "item_count": 3,
        "total_cents": 2500,
        "placed_at": placed["placed_at"],
    }
    assert events[7].data["lines"] == [
        {"product_id": mug["id"], "quantity": 2, "line_total_cents": 2200},
        {"product_id": tea["id"], "quantity": 1, "line_total_cents": 300},
    ]
    assert events[7].data["placed_at"] == placed["placed_at"]
    assert events[3].data["previous_price_cents"] == 1000
    assert events[3].data["price_cents"] == 1100
    assert events[4].data["quantity"] == 3

    # Every event names who caused it, and each command's token names its last event.
    assert events[5].metadata_["actor"] == {"id": customer.id, "role": "CUSTOMER"}
    assert events[1].metadata_["actor"]["role"] == "ADMIN"
    assert all(e.metadata_["schema_version"] == 1 for e in events)
    assert all(e.metadata_["correlation_id"] for e in events)
    assert (
        price["changeProductPrice"]["consistencyToken"]
        != restock["restockProduct"]["consistencyToken"]
    )
    assert cancel["cancelOrder"]["order"]["status"] == "CANCELLED"
    assert ship["shipOrder"]["order"]["status"] == "SHIPPED"


async def test_the_consistency_token_names_the_commands_last_event(
    api: Api, admin_token: str, engine: AsyncEngine
) -> None:
    product = await create_product(api, admin_token)
    head = await _head(engine)
    events = await _events_after(engine, head - 1)

    assert events[-1].type == "ProductCreated"
    assert str(events[-1].stream_id) == product["id"]
    data = await api.client.data(
        RESTOCK, {"input": {"productId": product["id"], "quantity": 1}}, admin_token
    )
    assert token_position(data["restockProduct"]["consistencyToken"]) == await _head(engine)
