"""Placing, cancelling and shipping orders over HTTP, with every rule's both sides."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Api, Customer, sign_up
from tests.shop_api import create_product, place, product_stock
from tests.support import (
    CANCEL_ORDER,
    PLACE_ORDER,
    SHIP_ORDER,
    count_events,
    error_codes,
)


async def test_place_order_returns_the_committed_order(
    api: Api, admin_token: str, customer: Customer
) -> None:
    mug = await create_product(api, admin_token, stock=10, price=1250)
    tea = await create_product(api, admin_token, stock=5, price=499)

    result = await place(api, customer.token, [(mug["id"], 2), (tea["id"], 3)])

    assert result["__typename"] == "OrderSuccess", result
    order = result["order"]
    assert order["status"] == "PLACED"
    assert order["customer"] == {"id": customer.id, "name": customer.name, "email": customer.email}
    assert [(ln["productId"], ln["quantity"], ln["lineTotalCents"]) for ln in order["lines"]] == [
        (mug["id"], 2, 2500),
        (tea["id"], 3, 1497),
    ]
    assert order["itemCount"] == 5
    assert order["totalCents"] == 3997
    assert order["version"] == 1
    assert result["consistencyToken"]
    assert await product_stock(api, admin_token, mug["id"]) == 8


async def test_insufficient_stock_on_any_line_refuses_the_whole_order(
    api: Api, admin_token: str, customer: Customer
) -> None:
    plenty = await create_product(api, admin_token, stock=10)
    scarce = await create_product(api, admin_token, stock=1)

    result = await place(api, customer.token, [(plenty["id"], 2), (scarce["id"], 2)])

    assert result["__typename"] == "InsufficientStockError"
    assert (result["productId"], result["requested"], result["available"]) == (scarce["id"], 2, 1)
    assert await product_stock(api, admin_token, plenty["id"]) == 10


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        ([("P", 0)], "lines[0].quantity"),
        ([("P", 1001)], "lines[0].quantity"),
        ([("P", 1), ("P", 1)], "lines[1].productId"),
    ],
)
async def test_order_line_rules(
    api: Api, admin_token: str, customer: Customer, lines: list[tuple[str, int]], field: str
) -> None:
    product = await create_product(api, admin_token)
    concrete = [(product["id"] if pid == "P" else pid, qty) for pid, qty in lines]

    result = await place(api, customer.token, concrete)

    assert result["__typename"] == "ValidationError"
    assert result["field"] == field


async def test_an_order_has_at_most_fifty_lines(
    api: Api, admin_token: str, customer: Customer
) -> None:
    products = [await create_product(api, admin_token) for _ in range(51)]

    fifty = await place(api, customer.token, [(p["id"], 1) for p in products[:50]])
    fifty_one = await place(api, customer.token, [(p["id"], 1) for p in products])

    assert fifty["__typename"] == "OrderSuccess"
    assert len(fifty["order"]["lines"]) == 50
    assert fifty_one["__typename"] == "ValidationError"
    assert fifty_one["field"] == "lines"


async def test_unknown_or_malformed_product_is_not_found(api: Api, customer: Customer) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    for product_id in (unknown, "not-a-uuid"):
        result = await place(api, customer.token, [(product_id, 1)])
        assert result["__typename"] == "NotFoundError"
        assert result["id"] == product_id


async def test_owner_cancels_and_stock_is_restored(
    api: Api, admin_token: str, customer: Customer
) -> None:
    product = await create_product(api, admin_token, stock=4)
    placed = await place(api, customer.token, [(product["id"], 3)])

    data = await api.client.data(
        CANCEL_ORDER, {"input": {"orderId": placed["order"]["id"]}}, customer.token
    )

    cancelled = data["cancelOrder"]
    assert cancelled["__typename"] == "OrderSuccess"
    assert cancelled["order"]["status"] == "CANCELLED"
    assert cancelled["order"]["version"] == 2
    assert await product_stock(api, admin_token, product["id"]) == 4


async def test_a_customer_cannot_cancel_another_customers_order(
    api: Api, admin_token: str, customer: Customer, engine: AsyncEngine
) -> None:
    """Refused as if the order did not exist: a stranger learns nothing about its id."""
    product = await create_product(api, admin_token)
    placed = await place(api, customer.token, [(product["id"], 1)])
    stranger = await sign_up(api, "Sam Stranger")

    data = await api.client.data(
        CANCEL_ORDER, {"input": {"orderId": placed["order"]["id"]}}, stranger.token
    )

    assert data["cancelOrder"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": f"no order with id {placed['order']['id']!r}",
        "id": placed["order"]["id"],
    }
    assert await count_events(engine, "OrderCancelled", {"order_id": placed["order"]["id"]}) == 0


async def test_an_admin_may_cancel_any_order(
    api: Api, admin_token: str, customer: Customer
) -> None:
    product = await create_product(api, admin_token)
    placed = await place(api, customer.token, [(product["id"], 1)])

    data = await api.client.data(
        CANCEL_ORDER, {"input": {"orderId": placed["order"]["id"]}}, admin_token
    )

    assert data["cancelOrder"]["order"]["status"] == "CANCELLED"


async def test_status_moves_only_from_placed(
    api: Api, admin_token: str, customer: Customer
) -> None:
    product = await create_product(api, admin_token)
    shipped = await place(api, customer.token, [(product["id"], 1)])
    cancelled = await place(api, customer.token, [(product["id"], 1)])
    await api.client.data(SHIP_ORDER, {"input": {"orderId": shipped["order"]["id"]}}, admin_token)
    await api.client.data(
        CANCEL_ORDER, {"input": {"orderId": cancelled["order"]["id"]}}, customer.token
    )

    cases = [
        (CANCEL_ORDER, "cancelOrder", shipped, customer.token, "SHIPPED", "CANCELLED"),
        (SHIP_ORDER, "shipOrder", shipped, admin_token, "SHIPPED", "SHIPPED"),
        (SHIP_ORDER, "shipOrder", cancelled, admin_token, "CANCELLED", "SHIPPED"),
        (CANCEL_ORDER, "cancelOrder", cancelled, customer.token, "CANCELLED", "CANCELLED"),
    ]
    for mutation, field, order, token, from_status, to_status in cases:
        data = await api.client.data(mutation, {"input": {"orderId": order["order"]["id"]}}, token)
        assert data[field]["__typename"] == "InvalidTransitionError"
        assert (data[field]["from"], data[field]["to"]) == (from_status, to_status)


async def test_only_an_admin_ships(api: Api, admin_token: str, customer: Customer) -> None:
    product = await create_product(api, admin_token)
    placed = await place(api, customer.token, [(product["id"], 1)])

    refused = await api.client.gql(
        SHIP_ORDER, {"input": {"orderId": placed["order"]["id"]}}, customer.token
    )
    shipped = await api.client.data(
        SHIP_ORDER, {"input": {"orderId": placed["order"]["id"]}}, admin_token
    )

    assert error_codes(refused) == ["FORBIDDEN"]
    assert shipped["shipOrder"]["order"]["status"] == "SHIPPED"
    assert shipped["shipOrder"]["order"]["version"] == 2


async def test_cancel_or_ship_an_unknown_order_is_not_found(api: Api, admin_token: str) -> None:
    for order_id in ("00000000-0000-4000-8000-000000000000", "garbage"):
        data = await api.client.data(SHIP_ORDER, {"input": {"orderId": order_id}}, admin_token)
        assert data["shipOrder"]["__typename"] == "NotFoundError"
        assert data["shipOrder"]["id"] == order_id


async def test_placing_an_order_needs_a_signed_in_customer(api: Api) -> None:
    body = await api.client.gql(
        PLACE_ORDER, {"input": {"lines": [{"productId": "x", "quantity": 1}]}}
    )
    assert error_codes(body) == ["UNAUTHENTICATED"]
