"""The pure business rules of writes/rules.py: each rule's accepting and refusing side."""

from __future__ import annotations

import itertools
import string
import uuid

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from writes import rules
from writes.commands import OrderLineRequest
from writes.errors import InsufficientStock, NotFound, ValidationFailed

# No example database on disk: runs stay hermetic, like `-p no:cacheprovider`.
hermetic = hypothesis_settings(database=None, deadline=None)

SKU_ALPHABET = string.ascii_letters + string.digits + "-_"
STATUSES = ("PLACED", "SHIPPED", "CANCELLED")


def _email_of_length(length: int) -> str:
    """A syntactically valid address of exactly `length` characters (64-char local part)."""
    local = "a" * 64
    domain_length = length - len(local) - 1
    labels: list[str] = []
    remaining = domain_length - len(".com")
    while remaining > 0:
        label = min(63, remaining)
        if remaining - label == 1:  # a lone dot would leave an empty label
            label -= 1
        labels.append("b" * label)
        remaining -= label + 1
    address = f"{local}@{'.'.join(labels)}.com"
    assert len(address) == length
    return address


# --- email -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada.Lovelace@Example.COM", "ada.lovelace@example.com"),
        ("ZOE@EXAMPLE.ORG", "zoe@example.org"),
        ("first+tag@sub.example.co.uk", "first+tag@sub.example.co.uk"),
    ],
)
def test_valid_email_is_accepted_in_lower_case(raw: str, normalized: str) -> None:
    assert rules.email(raw) == normalized


def test_email_of_254_characters_is_accepted() -> None:
    address = _email_of_length(254)
    assert rules.email(address) == address


@pytest.mark.parametrize("length", [255, 256, 400])
def test_email_longer_than_254_characters_is_refused(length: int) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.email(_email_of_length(length))
    assert refused_.value.field == "email"
    assert "254" in refused_.value.message


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "plainaddress",
        "@example.com",
        "ada@",
        "ada@example",
        "ada@@example.com",
        "ada example@example.com",
        " ada@example.com",
        "ada..lovelace@example.com",
        "ada@localhost",
    ],
)
def test_invalid_email_is_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.email(raw)
    assert refused_.value.field == "email"


@hermetic
@given(
    local=st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=30),
    domain=st.text(alphabet=string.ascii_letters, min_size=1, max_size=30),
)
def test_email_normalization_is_lower_case_and_idempotent(local: str, domain: str) -> None:
    normalized = rules.email(f"{local}@{domain}.com")
    assert normalized == f"{local}@{domain}.com".lower()
    assert rules.email(normalized) == normalized


# --- name --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kept"),
    [("A", "A"), ("Ada Lovelace", "Ada Lovelace"), ("  Ada  ", "Ada"), ("x" * 200, "x" * 200)],
)
def test_name_up_to_200_characters_is_accepted_and_trimmed(raw: str, kept: str) -> None:
    assert rules.name(raw) == kept


@pytest.mark.parametrize("raw", ["", " ", "\t\n  ", "x" * 201, " " + "x" * 201 + " "])
def test_blank_or_too_long_name_is_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.name(raw)
    assert refused_.value.field == "name"


# --- password ----------------------------------------------------------------------


@pytest.mark.parametrize("length", [10, 11, 199, 200])
def test_password_of_10_to_200_characters_is_accepted(length: int) -> None:
    assert rules.password("p" * length) == "p" * length


@pytest.mark.parametrize("length", [0, 1, 9, 201, 1000])
def test_password_shorter_than_10_or_longer_than_200_is_refused(length: int) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.password("p" * length)
    assert refused_.value.field == "password"


# --- sku ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["A", "mug-blue_01", "ABC-123", "0", "_", "-", "x" * 64])
def test_sku_of_1_to_64_allowed_characters_is_accepted(raw: str) -> None:
    assert rules.sku(raw) == raw


@pytest.mark.parametrize(
    "raw",
    ["", "x" * 65, "with space", "dot.ted", "slash/ed", "ünï", "tab\t", "new\nline", "mug\n"],
)
def test_sku_with_other_characters_or_length_is_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.sku(raw)
    assert refused_.value.field == "sku"


@hermetic
@given(st.text(max_size=80))
def test_sku_is_accepted_exactly_when_it_matches_the_rule(raw: str) -> None:
    allowed = 1 <= len(raw) <= 64 and all(ch in SKU_ALPHABET for ch in raw)
    if allowed:
        assert rules.sku(raw) == raw
    else:
        with pytest.raises(ValidationFailed) as refused_:
            rules.sku(raw)
        assert refused_.value.field == "sku"


# --- description -------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 4999, 5000])
def test_description_up_to_5000_characters_is_accepted(length: int) -> None:
    assert rules.description("d" * length) == "d" * length


@pytest.mark.parametrize("length", [5001, 20_000])
def test_description_over_5000_characters_is_refused(length: int) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.description("d" * length)
    assert refused_.value.field == "description"


# --- price and stock ---------------------------------------------------------------


@pytest.mark.parametrize("cents", [0, 1, 1250, 10**9])
def test_price_from_0_to_a_billion_cents_is_accepted(cents: int) -> None:
    assert rules.price_cents(cents) == cents


@pytest.mark.parametrize("cents", [-1, -(10**9), 10**9 + 1, 2**53])
def test_negative_or_too_high_price_is_refused(cents: int) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.price_cents(cents)
    assert refused_.value.field == "price_cents"


@pytest.mark.parametrize("units", [0, 1, 500, rules.MAX_STOCK])
def test_stock_from_0_to_the_maximum_is_accepted(units: int) -> None:
    assert rules.stock(units) == units


@pytest.mark.parametrize("units", [-1, -500, rules.MAX_STOCK + 1])
def test_negative_or_excessive_stock_is_refused(units: int) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.stock(units)
    assert refused_.value.field == "stock"


def test_stock_maximum_fits_a_graphql_int() -> None:
    assert rules.MAX_STOCK <= 2**31 - 1


# --- restock -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "current"),
    [(1, 0), (5, 10), (rules.MAX_STOCK, 0), (1, rules.MAX_STOCK - 1), (10, rules.MAX_STOCK - 10)],
)
def test_restock_within_the_stock_maximum_is_accepted(quantity: int, current: int) -> None:
    assert rules.restock_quantity(quantity, current) == quantity


@pytest.mark.parametrize(
    ("quantity", "current"),
    [
        (0, 10),
        (-1, 10),
        (-100, 1000),
        (1, rules.MAX_STOCK),
        (rules.MAX_STOCK + 1, 0),
        (11, rules.MAX_STOCK - 10),
    ],
)
def test_restock_of_nothing_or_past_the_maximum_is_refused(quantity: int, current: int) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.restock_quantity(quantity, current)
    assert refused_.value.field == "quantity"


@hermetic
@given(
    quantity=st.integers(min_value=-(10**10), max_value=10**10),
    current=st.integers(min_value=0, max_value=rules.MAX_STOCK),
)
def test_a_restock_is_accepted_exactly_when_stock_stays_within_bounds(
    quantity: int, current: int
) -> None:
    if quantity >= 1 and current + quantity <= rules.MAX_STOCK:
        assert rules.restock_quantity(quantity, current) == quantity
    else:
        with pytest.raises(ValidationFailed) as refused_:
            rules.restock_quantity(quantity, current)
        assert refused_.value.field == "quantity"


# --- order lines -------------------------------------------------------------------


def _lines(count: int, quantity: int = 1) -> tuple[OrderLineRequest, ...]:
    return tuple(OrderLineRequest(str(uuid.uuid4()), quantity) for _ in range(count))


@pytest.mark.parametrize("count", [1, 2, 50])
def test_an_order_of_1_to_50_lines_is_accepted(count: int) -> None:
    lines = _lines(count)
    quantities = rules.order_lines(lines)
    assert quantities == {uuid.UUID(line.product_id): 1 for line in lines}


@pytest.mark.parametrize("count", [0, 51, 100])
def test_an_order_of_no_or_more_than_50_lines_is_refused(count: int) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.order_lines(_lines(count))
    assert (refused_.value.field, refused_.value.line) == ("lines", None)


@pytest.mark.parametrize("quantity", [1, 2, 999, 1000])
def test_line_quantity_from_1_to_1000_is_accepted(quantity: int) -> None:
    (line,) = _lines(1, quantity)
    assert rules.order_lines((line,)) == {uuid.UUID(line.product_id): quantity}


@pytest.mark.parametrize("quantity", [-1, 0, 1001, 10**6])
def test_line_quantity_outside_1_to_1000_is_refused_naming_the_line(quantity: int) -> None:
    lines = (*_lines(1), OrderLineRequest(str(uuid.uuid4()), quantity))
    with pytest.raises(ValidationFailed) as refused_:
        rules.order_lines(lines)
    assert (refused_.value.field, refused_.value.line) == ("quantity", 1)


def test_a_product_on_two_lines_is_refused_naming_the_second() -> None:
    product_id = uuid.uuid4()
    lines = (
        OrderLineRequest(str(product_id), 1),
        OrderLineRequest(str(uuid.uuid4()), 1),
        OrderLineRequest(str(product_id).upper(), 2),
    )
    with pytest.raises(ValidationFailed) as refused_:
        rules.order_lines(lines)
    assert (refused_.value.field, refused_.value.line) == ("product_id", 2)


@pytest.mark.parametrize("raw", ["not-a-uuid", "", "1234", "00000000-0000-4000-8000-00000000000g"])
def test_a_malformed_product_id_is_not_found(raw: str) -> None:
    with pytest.raises(NotFound) as missing:
        rules.order_lines((OrderLineRequest(raw, 1),))
    assert (missing.value.kind, missing.value.id) == ("product", raw)


def test_entity_id_parses_a_uuid_and_refuses_anything_else() -> None:
    product_id = uuid.uuid4()
    assert rules.entity_id(str(product_id), "order") == product_id
    with pytest.raises(NotFound) as missing:
        rules.entity_id("garbage", "order")
    assert (missing.value.kind, missing.value.id) == ("order", "garbage")


# --- stock -------------------------------------------------------------------------


def test_an_order_within_stock_on_every_line_is_accepted() -> None:
    lines = _lines(2, quantity=3)
    in_stock = {uuid.UUID(lines[0].product_id): 3, uuid.UUID(lines[1].product_id): 10}
    rules.enough_stock(lines, in_stock)  # refusing would raise


def test_a_line_short_of_stock_refuses_the_order_naming_it() -> None:
    lines = _lines(3, quantity=2)
    in_stock = {uuid.UUID(line.product_id): 5 for line in lines} | {
        uuid.UUID(lines[1].product_id): 1
    }
    with pytest.raises(InsufficientStock) as short:
        rules.enough_stock(lines, in_stock)
    assert (short.value.product_id, short.value.requested, short.value.available) == (
        lines[1].product_id,
        2,
        1,
    )


def test_a_missing_product_is_not_found_as_the_line_spelled_it() -> None:
    known, unknown = _lines(2)
    spelled = OrderLineRequest(unknown.product_id.upper(), 1)
    with pytest.raises(NotFound) as missing:
        rules.enough_stock((known, spelled), {uuid.UUID(known.product_id): 1})
    assert (missing.value.kind, missing.value.id) == ("product", spelled.product_id)


def test_the_first_failing_line_is_the_one_named() -> None:
    short, absent = _lines(2, quantity=4)
    with pytest.raises(InsufficientStock) as refused_:
        rules.enough_stock((short, absent), {uuid.UUID(short.product_id): 3})
    assert refused_.value.product_id == short.product_id


@hermetic
@given(
    wanted=st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=50),
    extra=st.data(),
)
def test_an_order_is_accepted_exactly_when_every_line_has_its_stock(
    wanted: list[int], extra: st.DataObject
) -> None:
    lines = tuple(OrderLineRequest(str(uuid.uuid4()), quantity) for quantity in wanted)
    stock = [extra.draw(st.integers(min_value=0, max_value=1200)) for _ in lines]
    in_stock = {uuid.UUID(line.product_id): units for line, units in zip(lines, stock, strict=True)}
    if all(units >= line.quantity for line, units in zip(lines, stock, strict=True)):
        rules.enough_stock(lines, in_stock)
    else:
        with pytest.raises(InsufficientStock):
            rules.enough_stock(lines, in_stock)


# --- idempotency key ---------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "k", "checkout-42", "k" * 200])
def test_idempotency_key_absent_or_1_to_200_characters_is_accepted(key: str | None) -> None:
    assert rules.idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", "k" * 201, "k" * 5000])
def test_empty_or_too_long_idempotency_key_is_refused(key: str) -> None:
    with pytest.raises(ValidationFailed) as refused_:
        rules.idempotency_key(key)
    assert refused_.value.field == "idempotency_key"


# --- status transitions ------------------------------------------------------------

ALLOWED = {("PLACED", "SHIPPED"), ("PLACED", "CANCELLED")}


@pytest.mark.parametrize(("from_status", "to_status"), list(itertools.product(STATUSES, STATUSES)))
def test_orders_move_from_placed_to_shipped_or_cancelled_only(
    from_status: str, to_status: str
) -> None:
    assert rules.can_transition(from_status, to_status) is ((from_status, to_status) in ALLOWED)
