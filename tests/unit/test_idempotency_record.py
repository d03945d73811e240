"""The idempotency record of a keyed placeOrder: what is stored replays as the same view,
and records in the format written before decision 0065 still replay."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from writes.idempotency_record import replayed_order, stored_order
from writes.views import OrderCustomerView, OrderLineView, OrderView

ORDER_ID = uuid.UUID("5b0c3f5e-0000-4000-8000-000000000001")
CUSTOMER_ID = uuid.UUID("5b0c3f5e-0000-4000-8000-000000000002")
FIRST_PRODUCT = uuid.UUID("5b0c3f5e-0000-4000-8000-000000000003")
SECOND_PRODUCT = uuid.UUID("5b0c3f5e-0000-4000-8000-000000000004")
PLACED_AT = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)

VIEW = OrderView(
    id=ORDER_ID,
    status="PLACED",
    customer=OrderCustomerView(CUSTOMER_ID, "Ann", "ann@example.com"),
    lines=(
        OrderLineView(FIRST_PRODUCT, "SKU-1", "Kettle", 2500, 2),
        OrderLineView(SECOND_PRODUCT, "SKU-2", "Mug", 800, 1),
    ),
    item_count=3,
    total_cents=5800,
    placed_at=PLACED_AT,
    updated_at=PLACED_AT,
    version=1,
)

# A record exactly as the hand-written codec before decision 0065 stored it.
LEGACY_RECORD = {
    "id": str(ORDER_ID),
    "status": "PLACED",
    "customer": {"id": str(CUSTOMER_ID), "name": "Ann", "email": "ann@example.com"},
    "lines": [
        [str(FIRST_PRODUCT), "SKU-1", "Kettle", 2500, 2],
        [str(SECOND_PRODUCT), "SKU-2", "Mug", 800, 1],
    ],
    "item_count": 3,
    "total_cents": 5800,
    "placed_at": "2025-03-04T05:06:07.891+00:00",
    "updated_at": "2025-03-04T05:06:07.891+00:00",
    "version": 1,
}


def test_a_stored_order_replays_as_the_same_view_after_a_trip_through_json() -> None:
    record = json.loads(json.dumps(stored_order(VIEW)))  # as JSONB gives it back

    assert replayed_order(record) == VIEW


def test_a_stored_order_names_every_field_of_its_lines() -> None:
    lines = stored_order(VIEW)["lines"]

    assert lines[0] == {
        "product_id": str(FIRST_PRODUCT),
        "sku": "SKU-1",
        "name": "Kettle",
        "unit_price_cents": 2500,
        "quantity": 2,
    }


def test_a_record_in_the_format_before_0065_replays_as_the_view_it_was_written_for() -> None:
    replayed = replayed_order(json.loads(json.dumps(LEGACY_RECORD)))

    assert replayed == VIEW
    assert replayed.placed_at.utcoffset() == VIEW.placed_at.utcoffset()


def test_a_record_missing_a_field_is_refused_not_replayed_with_a_gap() -> None:
    damaged = {key: value for key, value in LEGACY_RECORD.items() if key != "total_cents"}

    with pytest.raises(ValidationError, match="total_cents"):
        replayed_order(damaged)


def test_a_legacy_line_with_a_value_too_many_is_refused() -> None:
    damaged = {**LEGACY_RECORD, "lines": [[str(FIRST_PRODUCT), "SKU-1", "Kettle", 2500, 2, 9]]}

    with pytest.raises(ValueError, match="zip"):
        replayed_order(damaged)
