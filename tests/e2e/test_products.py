"""Catalog management over HTTP: creating, repricing and restocking products (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Api, Customer
from tests.support import CHANGE_PRICE, CREATE_PRODUCT, RESTOCK, error_codes, event_count, unique
from writes.rules import MAX_STOCK

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def product_input(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "sku": unique("MUG"),
        "name": "Blue mug",
        "description": "A mug, blue.",
        "priceCents": 1250,
        "stock": 10,
    }
    return {"input": {**fields, **overrides}}


async def create(api: Api, token: str, **overrides: Any) -> dict[str, Any]:
    data = await api.client.data(CREATE_PRODUCT, product_input(**overrides), token)
    result: dict[str, Any] = data["createProduct"]
    return result


async def created(api: Api, admin_token: str, **overrides: Any) -> dict[str, Any]:
    result = await create(api, admin_token, **overrides)
    assert result["__typename"] == "ProductSuccess", result
    product: dict[str, Any] = result["product"]
    return product


async def change_price(api: Api, token: str, **input_: Any) -> dict[str, Any]:
    data = await api.client.data(CHANGE_PRICE, {"input": input_}, token)
    result: dict[str, Any] = data["changeProductPrice"]
    return result


async def restock(api: Api, token: str, product_id: str, quantity: int) -> dict[str, Any]:
    data = await api.client.data(
        RESTOCK, {"input": {"productId": product_id, "quantity": quantity}}, token
    )
    result: dict[str, Any] = data["restockProduct"]
    return result


# --- createProduct -----------------------------------------------------------------


async def test_an_admin_creates_a_product(api: Api, admin_token: str) -> None:
    sku = unique("MUG")

    result = await create(api, admin_token, sku=sku, priceCents=1250, stock=10)

    assert result["__typename"] == "ProductSuccess", result
    assert result["consistencyToken"]
    product = result["product"]
    assert product == {
        "id": product["id"],
        "sku": sku,
        "name": "Blue mug",
        "description": "A mug, blue.",
        "priceCents": 1250,
        "stock": 10,
        "inStock": True,
        "unitsSold": 0,
        "version": 1,
        "updatedAt": product["updatedAt"],
    }
    datetime.fromisoformat(product["updatedAt"])


async def test_a_product_without_stock_is_not_in_stock(api: Api, admin_token: str) -> None:
    product = await created(api, admin_token, stock=0)
    assert (product["stock"], product["inStock"]) == (0, False)


async def test_an_omitted_description_is_empty(api: Api, admin_token: str) -> None:
    fields = product_input()["input"]
    del fields["description"]

    data = await api.client.data(CREATE_PRODUCT, {"input": fields}, admin_token)

    assert data["createProduct"]["product"]["description"] == ""


async def test_the_boundaries_are_accepted(api: Api, admin_token: str) -> None:
    product = await created(
        api,
        admin_token,
        sku=unique("S").ljust(64, "_"),
        name="n" * 200,
        description="d" * 5000,
        priceCents=10**9,
        stock=MAX_STOCK,
    )
    assert (product["priceCents"], product["stock"]) == (10**9, MAX_STOCK)
    assert len(product["sku"]) == 64
    assert len(product["description"]) == 5000


@pytest.mark.parametrize(
    ("token_of", "code"), [("customer", "FORBIDDEN"), ("nobody", "UNAUTHENTICATED")]
)
async def test_only_an_admin_creates_products(
    api: Api, engine: AsyncEngine, customer: Customer, token_of: str, code: str
) -> None:
    token = customer.token if token_of == "customer" else None
    before = await event_count(engine)

    body = await api.client.gql(CREATE_PRODUCT, product_input(), token)

    assert error_codes(body) == [code], body
    assert body["data"] is None
    assert await event_count(engine) == before


async def test_a_sku_is_unique(api: Api, engine: AsyncEngine, admin_token: str) -> None:
    first = await created(api, admin_token)
    before = await event_count(engine)

    again = await create(api, admin_token, sku=first["sku"], name="Another mug")

    assert again["__typename"] == "ValidationError", again
    assert again["field"] == "sku"
    assert first["sku"] in again["message"]
    assert await event_count(engine) == before


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"sku": ""}, "sku"),
        ({"sku": "with space"}, "sku"),
        ({"sku": "dot.ted"}, "sku"),
        ({"sku": "x" * 65}, "sku"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"description": "d" * 5001}, "description"),
        ({"priceCents": 10**9 + 1}, "priceCents"),
        ({"stock": -1}, "stock"),
        ({"stock": MAX_STOCK + 1}, "stock"),
    ],
)
async def test_each_field_rule_names_the_field_and_writes_nothing(
    api: Api, engine: AsyncEngine, admin_token: str, override: dict[str, Any], field: str
) -> None:
    before = await event_count(engine)

    result = await create(api, admin_token, **override)

    assert result["__typename"] == "ValidationError", result
    assert result["field"] == field
    assert result["code"] == "VALIDATION_ERROR"
    assert await event_count(engine) == before


async def test_a_negative_price_is_refused_by_the_cents_scalar(
    api: Api, engine: AsyncEngine, admin_token: str
) -> None:
    before = await event_count(engine)

    body = await api.client.gql(CREATE_PRODUCT, product_input(priceCents=-1), admin_token)

    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert await event_count(engine) == before


# --- changeProductPrice ------------------------------------------------------------


async def test_an_admin_changes_a_price(api: Api, admin_token: str) -> None:
    product = await created(api, admin_token, priceCents=1250)

    result = await change_price(api, admin_token, productId=product["id"], priceCents=999)

    assert result["__typename"] == "ProductSuccess", result
    changed = result["product"]
    assert (changed["id"], changed["priceCents"], changed["version"]) == (product["id"], 999, 2)
    assert changed["stock"] == product["stock"]
    assert changed["updatedAt"] >= product["updatedAt"]
    assert result["consistencyToken"]


async def test_a_matching_expected_version_is_accepted(api: Api, admin_token: str) -> None:
    product = await created(api, admin_token)

    first = await change_price(
        api, admin_token, productId=product["id"], priceCents=100, expectedVersion=1
    )
    second = await change_price(
        api, admin_token, productId=product["id"], priceCents=200, expectedVersion=2
    )

    assert first["product"]["version"] == 2
    assert (second["product"]["priceCents"], second["product"]["version"]) == (200, 3)


async def test_a_stale_expected_version_is_a_version_conflict(
    api: Api, engine: AsyncEngine, admin_token: str
) -> None:
    product = await created(api, admin_token, priceCents=1250)
    await change_price(api, admin_token, productId=product["id"], priceCents=1300)
    before = await event_count(engine)

    result = await change_price(
        api, admin_token, productId=product["id"], priceCents=1400, expectedVersion=1
    )

    assert result["__typename"] == "VersionConflictError", result
    assert (result["expectedVersion"], result["actualVersion"]) == (1, 2)
    assert result["code"] == "VERSION_CONFLICT"
    assert await event_count(engine) == before
    current = await change_price(api, admin_token, productId=product["id"], priceCents=1300)
    assert current["product"]["version"] == 3  # the refused change left version 2 untouched


@pytest.mark.parametrize("product_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_changing_the_price_of_an_unknown_product_is_not_found(
    api: Api, admin_token: str, product_id: str
) -> None:
    result = await change_price(api, admin_token, productId=product_id, priceCents=100)

    assert result["__typename"] == "NotFoundError", result
    assert result["id"] == product_id


async def test_a_price_above_a_billion_cents_is_refused_on_change(
    api: Api, admin_token: str
) -> None:
    product = await created(api, admin_token)

    result = await change_price(api, admin_token, productId=product["id"], priceCents=10**9 + 1)

    assert result["__typename"] == "ValidationError", result
    assert result["field"] == "priceCents"


async def test_a_customer_cannot_change_a_price(
    api: Api, engine: AsyncEngine, admin_token: str, customer: Customer
) -> None:
    product = await created(api, admin_token)
    before = await event_count(engine)

    body = await api.client.gql(
        CHANGE_PRICE, {"input": {"productId": product["id"], "priceCents": 1}}, customer.token
    )

    assert error_codes(body) == ["FORBIDDEN"], body
    assert await event_count(engine) == before


# --- restockProduct ----------------------------------------------------------------


async def test_an_admin_restocks_a_product(api: Api, admin_token: str) -> None:
    product = await created(api, admin_token, stock=0)

    result = await restock(api, admin_token, product["id"], 7)

    assert result["__typename"] == "ProductSuccess", result
    restocked = result["product"]
    assert (restocked["stock"], restocked["inStock"], restocked["version"]) == (7, True, 2)
    again = await restock(api, admin_token, product["id"], 3)
    assert (again["product"]["stock"], again["product"]["version"]) == (10, 3)


@pytest.mark.parametrize("quantity", [0, -1])
async def test_restocking_nothing_is_refused(
    api: Api, engine: AsyncEngine, admin_token: str, quantity: int
) -> None:
    product = await created(api, admin_token)
    before = await event_count(engine)

    result = await restock(api, admin_token, product["id"], quantity)

    assert result["__typename"] == "ValidationError", result
    assert result["field"] == "quantity"
    assert await event_count(engine) == before


async def test_restocking_past_the_stock_maximum_is_refused(
    api: Api, engine: AsyncEngine, admin_token: str
) -> None:
    product = await created(api, admin_token, stock=10)
    before = await event_count(engine)

    over = await restock(api, admin_token, product["id"], MAX_STOCK - 9)
    exact = await restock(api, admin_token, product["id"], MAX_STOCK - 10)

    assert over["__typename"] == "ValidationError", over
    assert over["field"] == "quantity"
    assert exact["__typename"] == "ProductSuccess", exact
    assert exact["product"]["stock"] == MAX_STOCK
    assert await event_count(engine) == before + 1


@pytest.mark.parametrize("product_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_restocking_an_unknown_product_is_not_found(
    api: Api, admin_token: str, product_id: str
) -> None:
    result = await restock(api, admin_token, product_id, 5)

    assert result["__typename"] == "NotFoundError", result
    assert result["id"] == product_id


async def test_a_customer_cannot_restock(api: Api, admin_token: str, customer: Customer) -> None:
    product = await created(api, admin_token)

    body = await api.client.gql(
        RESTOCK, {"input": {"productId": product["id"], "quantity": 5}}, customer.token
    )

    assert error_codes(body) == ["FORBIDDEN"], body
