"""Signing up, logging in and bearer-token authentication over HTTP."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.auth import TokenService
from tests.conftest import PASSWORD, Api, Customer
from tests.support import (
    CANCEL_ORDER,
    CREATE_PRODUCT,
    LOG_IN,
    PLACE_ORDER,
    SHIP_ORDER,
    SIGN_UP,
    error_codes,
    event_count,
    unique,
)


def new_email(prefix: str = "signup") -> str:
    return f"{unique(prefix)}@example.com"


async def sign_up_as(
    api: Api, email: str, name: str = "Cara Customer", password: str = PASSWORD
) -> dict[str, Any]:
    data = await api.client.data(
        SIGN_UP, {"input": {"email": email, "name": name, "password": password}}
    )
    result: dict[str, Any] = data["signUp"]
    return result


async def log_in_as(api: Api, email: str, password: str = PASSWORD) -> dict[str, Any]:
    data = await api.client.data(LOG_IN, {"input": {"email": email, "password": password}})
    result: dict[str, Any] = data["logIn"]
    return result


async def create_product(api: Api, admin_token: str, price: int = 1000) -> str:
    data = await api.client.data(
        CREATE_PRODUCT,
        {"input": {"sku": unique("SKU"), "name": "Tea pot", "priceCents": price, "stock": 100}},
        admin_token,
    )
    assert data["createProduct"]["__typename"] == "ProductSuccess", data
    product_id: str = data["createProduct"]["product"]["id"]
    return product_id


def order_input(product_id: str, quantity: int = 1) -> dict[str, Any]:
    return {"input": {"lines": [{"productId": product_id, "quantity": quantity}]}}


def tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


# --- signUp ------------------------------------------------------------------------


async def test_sign_up_signs_in_a_new_customer(api: Api) -> None:
    email = new_email()

    result = await sign_up_as(api, email, name="  Cara Customer  ")

    assert result["__typename"] == "AuthSuccess", result
    customer = result["customer"]
    UUID(customer["id"])
    assert customer == {
        "id": customer["id"],
        "email": email,
        "name": "Cara Customer",
        "role": "CUSTOMER",
        "orderCount": 0,
        "lifetimeValueCents": 0,
    }
    assert result["token"].count(".") == 2
    assert result["consistencyToken"]
    assert api.settings.jwt_secret
    actor = tokens_of(api).verify(result["token"])
    assert (str(actor.customer_id), actor.role.value) == (customer["id"], "CUSTOMER")


async def test_sign_up_stores_the_email_in_lower_case(api: Api) -> None:
    email = new_email("MixedCase")

    result = await sign_up_as(api, email.upper())

    assert result["customer"]["email"] == email.lower()


@pytest.mark.parametrize("variant", [str, str.upper, str.title])
async def test_an_email_can_have_only_one_account_whatever_its_case(
    api: Api, engine: AsyncEngine, variant: Any
) -> None:
    email = new_email("taken")
    assert (await sign_up_as(api, email))["__typename"] == "AuthSuccess"
    before = await event_count(engine)

    again = await sign_up_as(api, variant(email), name="Someone Else")

    assert again["__typename"] == "EmailTakenError", again
    assert again["code"] == "EMAIL_TAKEN"
    assert again["message"]
    assert await event_count(engine) == before


@pytest.mark.parametrize(
    ("email", "name", "password", "field"),
    [
        ("not-an-email", "Cara", PASSWORD, "email"),
        ("cara@", "Cara", PASSWORD, "email"),
        ("a" * 250 + "@example.com", "Cara", PASSWORD, "email"),
        (None, "Cara", "short-pw1", "password"),
        (None, "Cara", "p" * 201, "password"),
        (None, "", PASSWORD, "name"),
        (None, "   ", PASSWORD, "name"),
        (None, "n" * 201, PASSWORD, "name"),
    ],
)
async def test_sign_up_rules_name_the_field(
    api: Api, engine: AsyncEngine, email: str | None, name: str, password: str, field: str
) -> None:
    before = await event_count(engine)

    result = await sign_up_as(api, email or new_email(), name=name, password=password)

    assert result["__typename"] == "ValidationError", result
    assert result["field"] == field
    assert result["code"] == "VALIDATION_ERROR"
    assert await event_count(engine) == before


async def test_sign_up_accepts_the_boundaries(api: Api) -> None:
    result = await sign_up_as(api, new_email(), name="n" * 200, password="p" * 10)
    assert result["__typename"] == "AuthSuccess", result
    assert result["customer"]["name"] == "n" * 200


# --- logIn -------------------------------------------------------------------------


async def test_log_in_returns_a_token_for_the_customer(api: Api, customer: Customer) -> None:
    result = await log_in_as(api, customer.email)

    assert result["__typename"] == "AuthSuccess", result
    assert result["customer"]["id"] == customer.id
    assert result["customer"]["email"] == customer.email
    assert result["customer"]["role"] == "CUSTOMER"
    assert result["consistencyToken"]
    assert str(tokens_of(api).verify(result["token"]).customer_id) == customer.id


async def test_log_in_ignores_the_case_of_the_email(api: Api, customer: Customer) -> None:
    result = await log_in_as(api, customer.email.upper())
    assert result["__typename"] == "AuthSuccess", result
    assert result["customer"]["id"] == customer.id


async def test_the_email_that_signed_up_logs_in_even_when_unicode_normalization_applies(
    api: Api,
) -> None:
    # "e" + combining diaeresis: sign-up stores the NFC form "ë".
    email = f"zoe\u0308-{unique('nfc')}@example.com"
    assert (await sign_up_as(api, email))["__typename"] == "AuthSuccess"

    result = await log_in_as(api, email)

    assert result["__typename"] == "AuthSuccess", result


async def test_a_wrong_password_or_unknown_email_is_invalid_credentials(
    api: Api, customer: Customer
) -> None:
    wrong_password = await log_in_as(api, customer.email, "not-the-password")
    unknown_email = await log_in_as(api, new_email("nobody"))
    no_password = await log_in_as(api, customer.email, "")

    for result in (wrong_password, unknown_email, no_password):
        assert result["__typename"] == "InvalidCredentialsError", result
        assert result["code"] == "INVALID_CREDENTIALS"
    # The two failures are indistinguishable, so they do not reveal which emails exist.
    assert wrong_password["message"] == unknown_email["message"]


async def test_the_log_in_token_works_on_an_authenticated_mutation(
    api: Api, admin_token: str, customer: Customer
) -> None:
    product_id = await create_product(api, admin_token)
    token = (await log_in_as(api, customer.email))["token"]

    data = await api.client.data(PLACE_ORDER, order_input(product_id), token)

    assert data["placeOrder"]["__typename"] == "OrderSuccess", data
    assert data["placeOrder"]["order"]["customer"]["id"] == customer.id


async def test_log_in_counts_placed_and_shipped_orders_but_not_cancelled_ones(
    api: Api, admin_token: str, customer: Customer
) -> None:
    product_id = await create_product(api, admin_token, price=1000)
    placed = await api.client.data(PLACE_ORDER, order_input(product_id, 2), customer.token)
    shipped = await api.client.data(PLACE_ORDER, order_input(product_id, 3), customer.token)
    cancelled = await api.client.data(PLACE_ORDER, order_input(product_id, 5), customer.token)
    assert placed["placeOrder"]["__typename"] == "OrderSuccess"
    await api.client.data(
        SHIP_ORDER, {"input": {"orderId": shipped["placeOrder"]["order"]["id"]}}, admin_token
    )
    await api.client.data(
        CANCEL_ORDER,
        {"input": {"orderId": cancelled["placeOrder"]["order"]["id"]}},
        customer.token,
    )

    result = await log_in_as(api, customer.email)

    assert result["customer"]["orderCount"] == 2
    assert result["customer"]["lifetimeValueCents"] == 2000 + 3000


# --- bad bearer tokens -------------------------------------------------------------


def tokens_of(api: Api, ttl_seconds: int | None = None) -> TokenService:
    settings = api.settings
    return TokenService(
        settings.jwt_secret,
        settings.jwt_algorithm,
        settings.jwt_ttl_seconds if ttl_seconds is None else ttl_seconds,
        settings.jwt_issuer,
    )


async def _bad_headers(api: Api, customer: Customer) -> dict[str, dict[str, str]]:
    expired = tokens_of(api, ttl_seconds=-60).issue(UUID(customer.id), "CUSTOMER")
    return {
        "tampered": {"Authorization": f"Bearer {tampered(customer.token)}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "other scheme": {"Authorization": f"Token {customer.token}"},
        "no scheme": {"Authorization": customer.token},
        "empty bearer": {"Authorization": "Bearer"},
        "garbage": {"Authorization": "Bearer not-a-jwt"},
    }


@pytest.mark.parametrize(
    "case", ["tampered", "expired", "other scheme", "no scheme", "empty bearer", "garbage"]
)
async def test_a_bad_bearer_token_is_unauthenticated_and_writes_nothing(
    api: Api, engine: AsyncEngine, admin_token: str, customer: Customer, case: str
) -> None:
    product_id = await create_product(api, admin_token)
    headers = (await _bad_headers(api, customer))[case]
    before = await event_count(engine)

    body = await api.client.gql(PLACE_ORDER, order_input(product_id), headers=headers)

    assert error_codes(body) == ["UNAUTHENTICATED"], body
    assert body["data"] is None
    assert await event_count(engine) == before
    # The same request with the customer's real token would have written an order.
    ok = await api.client.data(PLACE_ORDER, order_input(product_id), customer.token)
    assert ok["placeOrder"]["__typename"] == "OrderSuccess"
    assert await event_count(engine) > before


async def test_an_admin_token_forged_with_another_secret_is_unauthenticated(
    api: Api, engine: AsyncEngine, customer: Customer
) -> None:
    forged = TokenService("x" * 64, "HS256", 60, api.settings.jwt_issuer).issue(
        UUID(customer.id), "ADMIN"
    )
    before = await event_count(engine)

    body = await api.client.gql(
        CREATE_PRODUCT,
        {"input": {"sku": unique("SKU"), "name": "Forged", "priceCents": 1, "stock": 1}},
        forged,
    )

    assert error_codes(body) == ["UNAUTHENTICATED"], body
    assert await event_count(engine) == before
