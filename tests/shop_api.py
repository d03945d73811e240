"""The shop's mutations and subscriptions over HTTP as every suite's tests call them
(e2e, integration, security, clients), so no suite imports another's test module."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.support import CHANGE_PRICE, CREATE_PRODUCT, place_order, unique

MY_ORDERS_UPDATED = """subscription($after: String) {
  myOrdersUpdated(afterToken: $after) { id status version customer { id } }
}"""
PRODUCT_UPDATED = """subscription($id: ID, $after: String) {
  productUpdated(id: $id, afterToken: $after) { id priceCents stock version }
}"""


async def create_product(
    api: Api, admin_token: str, stock: int = 10, price: int = 1250
) -> dict[str, Any]:
    data = await api.client.data(
        CREATE_PRODUCT,
        {"input": {"sku": unique("SKU"), "name": "Blue mug", "priceCents": price, "stock": stock}},
        admin_token,
    )
    result = data["createProduct"]
    assert result["__typename"] == "ProductSuccess", result
    product: dict[str, Any] = result["product"]
    return product


async def place(
    api: Api, token: str, lines: list[tuple[str, int]], key: str | None = None
) -> dict[str, Any]:
    """The placeOrder result for `(product id, quantity)` lines."""
    return await place_order(api.client, token, lines, key)


async def product_stock(api: Api, admin_token: str, product_id: str) -> int:
    """Current stock as the write side reports it (a zero-quantity restock is refused, so use price)."""
    data = await api.client.data(
        CHANGE_PRICE, {"input": {"productId": product_id, "priceCents": 1250}}, admin_token
    )
    stock: int = data["changeProductPrice"]["product"]["stock"]
    return stock


async def place_ok(api: Api, token: str, product_id: str, quantity: int = 1) -> dict[str, Any]:
    placed = await place(api, token, [(product_id, quantity)])
    assert placed["__typename"] == "OrderSuccess", placed
    return placed


def codes(errors: list[dict[str, Any]]) -> list[str | None]:
    return [error.get("extensions", {}).get("code") for error in errors]
