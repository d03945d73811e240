"""schema/errors.py turns a domain refusal, named in the domain's words, into the
ValidationError clients see: the input path and message exactly as the API gives them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import get_args

import pytest

from schema.errors import INPUT_FIELDS, InsufficientStockError, ValidationError, user_error
from writes import rules
from writes.commands import OrderLineRequest
from writes.errors import CommandField, DomainError, InsufficientStock, ValidationFailed

PRODUCT = str(uuid.uuid4())


def refusal(rule: Callable[[], object]) -> DomainError:
    with pytest.raises(DomainError) as refused:
        rule()
    return refused.value


def test_every_command_field_has_an_input_path() -> None:
    assert set(INPUT_FIELDS) == set(get_args(CommandField))


# (the rule refusing, the field and message a client receives); the payloads are the
# API's as they were when the rules still named GraphQL paths themselves.
CASES: list[tuple[Callable[[], object], str, str]] = [
    (lambda: rules.order_lines(()), "lines", "lines: an order has 1 to 50 lines"),
    (
        lambda: rules.order_lines((OrderLineRequest(PRODUCT, 1), OrderLineRequest(PRODUCT, 0))),
        "lines[1].quantity",
        "lines[1].quantity: must be between 1 and 1000",
    ),
    (
        lambda: rules.order_lines(
            (OrderLineRequest(PRODUCT, 1), OrderLineRequest(PRODUCT.upper(), 1))
        ),
        "lines[1].productId",
        "lines[1].productId: the product appears on another line already",
    ),
    (
        lambda: rules.price_cents(-1),
        "priceCents",
        "priceCents: must be between 0 and 1000000000 cents",
    ),
    (
        lambda: rules.idempotency_key(""),
        "idempotencyKey",
        "idempotencyKey: must be 1 to 200 characters long",
    ),
    (lambda: rules.restock_quantity(0, 1), "quantity", "quantity: must be at least 1"),
    (lambda: rules.stock(-1), "stock", "stock: must be between 0 and 1000000000"),
    (
        lambda: rules.plain_text("a\x00", "password"),
        "password",
        "password: must not contain control characters: found U+0000",
    ),
    (lambda: rules.name(" "), "name", "name: must not be blank"),
]


@pytest.mark.parametrize(("rule", "field", "message"), CASES, ids=[c[1] for c in CASES])
def test_a_validation_failure_reaches_the_client_under_its_input_path(
    rule: Callable[[], object], field: str, message: str
) -> None:
    error = user_error(refusal(rule))

    assert isinstance(error, ValidationError)
    assert (error.code, error.field, error.message) == ("VALIDATION_ERROR", field, message)


def test_the_domain_names_a_line_s_field_without_the_input_path() -> None:
    failed = refusal(lambda: rules.order_lines((OrderLineRequest(PRODUCT, 0),)))

    assert isinstance(failed, ValidationFailed)
    assert (failed.field, failed.line) == ("quantity", 0)
    assert str(failed) == "quantity of line 0: must be between 1 and 1000"


def test_insufficient_stock_names_the_product_as_the_line_gave_it() -> None:
    error = user_error(InsufficientStock(PRODUCT.upper(), 3, 1))

    assert isinstance(error, InsufficientStockError)
    assert (error.product_id, error.requested, error.available) == (PRODUCT.upper(), 3, 1)
    assert error.message == f"product {PRODUCT.upper()} has 1 in stock, 3 requested"
