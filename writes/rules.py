"""Pure business rules for command input: no I/O, so unit tests need no services."""

from __future__ import annotations

import re
from collections.abc import Mapping
from uuid import UUID

from email_validator import EmailNotValidError, validate_email

from writes.commands import OrderLineRequest
from writes.errors import CommandField, InsufficientStock, NotFound, ValidationFailed

MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_EMAIL = 254
MIN_PASSWORD, MAX_PASSWORD = 10, 200
MAX_PRICE_CENTS = 10**9
# Stock and quantities travel as GraphQL Int (32-bit); this bound keeps every sum in range.
MAX_STOCK = 10**9
MIN_LINES, MAX_LINES = 1, 50
MIN_QUANTITY, MAX_QUANTITY = 1, 1000
MAX_IDEMPOTENCY_KEY = 200
SKU_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Unicode control characters (category Cc: C0, DEL, C1). PostgreSQL refuses NUL in text,
# and none of them belongs in a name, an address or a password. Multi-line text keeps
# tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """The first control character `value` may not hold (U+XXXX), None when there is none."""
    found = (_CONTROL_IN_MULTILINE if multiline else _CONTROL).search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def plain_text(value: str, field: CommandField, *, multiline: bool = False) -> str:
    """`value` unchanged; ValidationFailed naming `field` if it holds a control character."""
    found = control_character(value, multiline=multiline)
    if found is not None:
        allowed = " (tab and line breaks are allowed)" if multiline else ""
        raise ValidationFailed(
            field, f"must not contain control characters{allowed}: found {found}"
        )
    return value


def email(value: str) -> str:
    """A valid address of at most 254 characters, normalized to lower case."""
    plain_text(value, "email")
    if len(value) > MAX_EMAIL:
        raise ValidationFailed("email", f"must be at most {MAX_EMAIL} characters")
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed("email", f"is not a valid address: {exc}") from None
    return checked.normalized.lower()


def login_email(value: str) -> str:
    """The stored form of an email given to log in: sign-up's normalization (NFC, lower
    case) when it applies, else trimmed and lower case (it then matches no account)."""
    plain_text(value, "email")
    try:
        return email(value.strip())
    except ValidationFailed:
        return value.strip().lower()


def name(value: str) -> str:
    """A non-blank display name of at most 200 characters, trimmed."""
    trimmed = plain_text(value, "name").strip()
    if not trimmed:
        raise ValidationFailed("name", "must not be blank")
    if len(trimmed) > MAX_NAME:
        raise ValidationFailed("name", f"must be at most {MAX_NAME} characters")
    return trimmed


def password(value: str) -> str:
    """10 to 200 characters, none of them a control character."""
    plain_text(value, "password")
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise ValidationFailed(
            "password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )
    return value


def sku(value: str) -> str:
    plain_text(value, "sku")
    if not SKU_PATTERN.fullmatch(value):
        raise ValidationFailed("sku", "must be 1 to 64 characters of A-Z, a-z, 0-9, '-' or '_'")
    return value


def description(value: str) -> str:
    plain_text(value, "description", multiline=True)
    if len(value) > MAX_DESCRIPTION:
        raise ValidationFailed("description", f"must be at most {MAX_DESCRIPTION} characters")
    return value


def price_cents(value: int) -> int:
    if not 0 <= value <= MAX_PRICE_CENTS:
        raise ValidationFailed("price_cents", f"must be between 0 and {MAX_PRICE_CENTS} cents")
    return value


def stock(value: int) -> int:
    if not 0 <= value <= MAX_STOCK:
        raise ValidationFailed("stock", f"must be between 0 and {MAX_STOCK}")
    return value


def restock_quantity(quantity: int, current_stock: int) -> int:
    """A positive quantity that keeps stock within its bound."""
    if quantity < 1:
        raise ValidationFailed("quantity", "must be at least 1")
    if current_stock + quantity > MAX_STOCK:
        raise ValidationFailed(
            "quantity", f"would take stock above {MAX_STOCK} (now {current_stock})"
        )
    return quantity


def entity_id(value: str, kind: str) -> UUID:
    """The UUID an id names; a malformed one names nothing, so it is not found.

    UUID() lets int() skip whitespace, so "\\t" and 31 hex digits would name a product:
    an id holding a control character is malformed whatever UUID() makes of it.
    """
    if control_character(value) is not None:
        raise NotFound(kind, value)
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(kind, value) from None


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    plain_text(value, "idempotency_key")
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            "idempotency_key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters long"
        )
    return value


def order_lines(lines: tuple[OrderLineRequest, ...]) -> dict[UUID, int]:
    """Quantities by product for 1-50 lines of 1-1000 units, each product once."""
    if not MIN_LINES <= len(lines) <= MAX_LINES:
        raise ValidationFailed("lines", f"an order has {MIN_LINES} to {MAX_LINES} lines")
    quantities: dict[UUID, int] = {}
    for index, line in enumerate(lines):
        if not MIN_QUANTITY <= line.quantity <= MAX_QUANTITY:
            raise ValidationFailed(
                "quantity", f"must be between {MIN_QUANTITY} and {MAX_QUANTITY}", line=index
            )
        product_id = entity_id(line.product_id, "product")
        if product_id in quantities:
            raise ValidationFailed(
                "product_id", "the product appears on another line already", line=index
            )
        quantities[product_id] = line.quantity
    return quantities


def enough_stock(lines: tuple[OrderLineRequest, ...], in_stock: Mapping[UUID, int]) -> None:
    """Every line's product exists and has the line's quantity in stock, else the order is
    refused whole: NotFound or InsufficientStock for the first line that fails, naming the
    product as the line gave it.

    `lines` have passed `order_lines`; `in_stock` is the stock of the products found, by id.
    """
    for line in lines:
        available = in_stock.get(UUID(line.product_id))
        if available is None:
            raise NotFound("product", line.product_id)
        if available < line.quantity:
            raise InsufficientStock(line.product_id, line.quantity, available)


def can_transition(from_status: str, to_status: str) -> bool:
    """Orders move PLACED -> SHIPPED or PLACED -> CANCELLED only."""
    return from_status == "PLACED" and to_status in {"SHIPPED", "CANCELLED"}
