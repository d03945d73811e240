"""Projectors are pure: each event gives exactly the expected MongoDB writes.

Events are built from the real event dataclasses and round-tripped through JSON, as
they come out of `event_log.data`. The comparison behind `shop projections verify` is
a pure function and is tested here too.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bson.int64 import Int64
from pymongo import UpdateOne

from reads.documents import INDEXES, event_time, sales_day
from workers.projection import Projector, StoredEvent, Write
from workers.projectors import PROJECTORS
from workers.verify import compare_documents
from writes.events import (
    CustomerRegistered,
    DomainEvent,
    OrderCancelled,
    OrderCustomerData,
    OrderLineData,
    OrderPlaced,
    OrderShipped,
    ProductCreated,
    ProductPriceChanged,
    ProductRestocked,
    RestockedLine,
)

CUSTOMER = "c0000000-0000-4000-8000-000000000001"
ORDER = "00000000-0000-4000-8000-0000000000aa"
MUG = "f0000000-0000-4000-8000-000000000001"
TEA = "f0000000-0000-4000-8000-000000000002"
PLACED = datetime(2025, 3, 31, 23, 59, 59, 123000, tzinfo=UTC)
LATER = datetime(2025, 4, 1, 8, 0, 0, 456000, tzinfo=UTC)

REGISTERED = CustomerRegistered(
    CUSTOMER, "cara@example.com", "Cara", "CUSTOMER", PLACED.isoformat()
)
CREATED = ProductCreated(MUG, "MUG-1", "Blue mug", "Holds tea", 1250, 3, PLACED.isoformat())
PRICE = ProductPriceChanged(MUG, 1250, 1300, LATER.isoformat())
RESTOCKED = ProductRestocked(MUG, 5, LATER.isoformat())
PLACED_ORDER = OrderPlaced(
    order_id=ORDER,
    customer=OrderCustomerData(CUSTOMER, "Cara", "cara@example.com"),
    lines=(
        OrderLineData(MUG, "MUG-1", "Blue mug", 1250, 2, 2500),
        OrderLineData(TEA, "TEA-1", "Green tea", 499, 3, 1497),
    ),
    item_count=5,
    total_cents=3997,
    placed_at=PLACED.isoformat(timespec="milliseconds"),
)
CANCELLED = OrderCancelled(
    order_id=ORDER,
    customer_id=CUSTOMER,
    lines=(RestockedLine(MUG, 2, 2500), RestockedLine(TEA, 3, 1497)),
    total_cents=3997,
    placed_at=PLACED.isoformat(timespec="milliseconds"),
    cancelled_at=LATER.isoformat(timespec="milliseconds"),
)
SHIPPED = OrderShipped(ORDER, CUSTOMER, LATER.isoformat(timespec="milliseconds"))

ALL_EVENTS: list[tuple[DomainEvent, str, int]] = [
    (REGISTERED, CUSTOMER, 1),
    (CREATED, MUG, 1),
    (PRICE, MUG, 2),
    (RESTOCKED, MUG, 3),
    (PLACED_ORDER, ORDER, 1),
    (CANCELLED, ORDER, 2),
    (SHIPPED, ORDER, 2),
]


def stored(event: DomainEvent, stream_id: str, version: int, position: int = 42) -> StoredEvent:
    """`event` as the log hands it to projectors: JSON data, as jsonb returns it."""
    return StoredEvent(
        position=position,
        stream_type=event.stream_type,
        stream_id=stream_id,
        stream_version=version,
        type=type(event).__name__,
        data=json.loads(json.dumps(dataclasses.asdict(event))),
        recorded_at=LATER,
    )


def ops(projector: Projector, event: StoredEvent) -> list[tuple[str, str, UpdateOne]]:
    writes = projector.apply(event)
    assert all(isinstance(write, Write) for write in writes)
    assert all(isinstance(write.op, UpdateOne) for write in writes)
    return [(w.collection, w.doc_id, w.op) for w in writes]  # type: ignore[misc]


# -- the registry -------------------------------------------------------------------------


def test_every_projection_is_registered_under_its_name() -> None:
    assert set(PROJECTORS) == {"orders", "products", "customers", "sales"}
    for name, projector in PROJECTORS.items():
        assert projector.name == name
        assert projector.collections
        assert set(projector.collections) >= set(INDEXES) & set(projector.collections)
    owned = [c for p in PROJECTORS.values() for c in p.collections]
    assert len(owned) == len(set(owned)), "two projections own one collection"


@pytest.mark.parametrize(("event", "stream_id", "version"), ALL_EVENTS)
def test_every_write_stays_in_its_projections_collections_and_records_the_position(
    event: DomainEvent, stream_id: str, version: int
) -> None:
    for projector in PROJECTORS.values():
        for collection, doc_id, op in ops(projector, stored(event, stream_id, version, 77)):
            assert collection in projector.collections
            assert op._filter == {"_id": doc_id}
            assert _sets(op)["position"] in (77, {"$literal": 77})


def test_projectors_import_only_event_names_and_document_shapes() -> None:
    allowed = {"writes.events", "reads.documents", "workers.projection", "workers.projectors"}
    folder = Path(__file__).resolve().parents[2] / "workers" / "projectors"
    for module in folder.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")[0]
                if top in {"app", "schema", "writes", "reads", "workers"}:
                    assert node.module in allowed, f"{module.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in {"app", "schema", "writes", "reads"}


def _sets(op: UpdateOne) -> dict[str, Any]:
    doc: Any = op._doc
    if isinstance(doc, list):  # an update pipeline: the first stage sets the fields
        first: dict[str, Any] = doc[0]["$set"]
        return first
    values: dict[str, Any] = doc["$set"]
    return values


# -- orders -------------------------------------------------------------------------------

orders = PROJECTORS["orders"]


def test_order_placed_creates_the_summary_with_customer_and_lines() -> None:
    assert ops(orders, stored(PLACED_ORDER, ORDER, 1)) == [
        (
            "orders",
            ORDER,
            UpdateOne(
                {"_id": ORDER},
                {
                    "$set": {
                        "customer": {"id": CUSTOMER, "name": "Cara", "email": "cara@example.com"},
                        "status": "PLACED",
                        "lines": [
                            {
                                "product_id": MUG,
                                "sku": "MUG-1",
                                "name": "Blue mug",
                                "unit_price_cents": 1250,
                                "quantity": 2,
                                "line_total_cents": 2500,
                            },
                            {
                                "product_id": TEA,
                                "sku": "TEA-1",
                                "name": "Green tea",
                                "unit_price_cents": 499,
                                "quantity": 3,
                                "line_total_cents": 1497,
                            },
                        ],
                        "item_count": 5,
                        "total_cents": 3997,
                        "placed_at": PLACED,
                        "updated_at": PLACED,
                        "version": 1,
                        "position": 42,
                    }
                },
                upsert=True,
            ),
        )
    ]


@pytest.mark.parametrize(
    ("event", "status"), [(CANCELLED, "CANCELLED"), (SHIPPED, "SHIPPED")], ids=["cancel", "ship"]
)
def test_cancel_and_ship_move_status_updated_at_and_version(
    event: DomainEvent, status: str
) -> None:
    assert ops(orders, stored(event, ORDER, 2, position=50)) == [
        (
            "orders",
            ORDER,
            UpdateOne(
                {"_id": ORDER},
                {"$set": {"status": status, "updated_at": LATER, "version": 2, "position": 50}},
            ),
        )
    ]


@pytest.mark.parametrize(
    "event", [REGISTERED, CREATED, PRICE, RESTOCKED], ids=lambda e: type(e).__name__
)
def test_orders_ignore_customer_and_catalog_events(event: DomainEvent) -> None:
    assert orders.apply(stored(event, "x", 1)) == []


# -- products -----------------------------------------------------------------------------

products = PROJECTORS["products"]


def _stock_op(product: str, stock: int, sold: int, at: datetime, **extra: object) -> UpdateOne:
    first = {
        "stock": {"$add": ["$stock", stock]},
        "units_sold": {"$add": ["$units_sold", sold]},
        "updated_at": {"$literal": at},
        "position": {"$literal": 42},
        **{k: {"$literal": v} for k, v in extra.items()},
    }
    return UpdateOne(
        {"_id": product},
        [{"$set": first}, {"$set": {"in_stock": {"$gt": ["$stock", 0]}}}],
    )


def test_product_created_starts_with_nothing_sold() -> None:
    assert ops(products, stored(CREATED, MUG, 1)) == [
        (
            "products",
            MUG,
            UpdateOne(
                {"_id": MUG},
                {
                    "$set": {
                        "sku": "MUG-1",
                        "name": "Blue mug",
                        "description": "Holds tea",
                        "price_cents": 1250,
                        "stock": 3,
                        "in_stock": True,
                        "units_sold": 0,
                        "version": 1,
                        "updated_at": PLACED,
                        "position": 42,
                    }
                },
                upsert=True,
            ),
        )
    ]


def test_a_product_created_without_stock_is_not_in_stock() -> None:
    empty = dataclasses.replace(CREATED, stock=0)
    [(_, _, op)] = ops(products, stored(empty, MUG, 1))
    assert _sets(op)["in_stock"] is False


def test_price_change_sets_price_version_and_updated_at() -> None:
    assert ops(products, stored(PRICE, MUG, 2)) == [
        (
            "products",
            MUG,
            UpdateOne(
                {"_id": MUG},
                {"$set": {"price_cents": 1300, "version": 2, "updated_at": LATER, "position": 42}},
            ),
        )
    ]


def test_restock_adds_stock_and_bumps_version_in_one_pipeline() -> None:
    assert ops(products, stored(RESTOCKED, MUG, 3)) == [
        ("products", MUG, _stock_op(MUG, 5, 0, LATER, version=3))
    ]


def test_order_placed_takes_stock_and_counts_units_without_a_new_version() -> None:
    assert ops(products, stored(PLACED_ORDER, ORDER, 1)) == [
        ("products", MUG, _stock_op(MUG, -2, 2, PLACED)),
        ("products", TEA, _stock_op(TEA, -3, 3, PLACED)),
    ]


def test_order_cancelled_puts_stock_back_at_the_cancel_time() -> None:
    assert ops(products, stored(CANCELLED, ORDER, 2)) == [
        ("products", MUG, _stock_op(MUG, 2, -2, LATER)),
        ("products", TEA, _stock_op(TEA, 3, -3, LATER)),
    ]


def test_pipeline_values_are_literals_so_dollar_strings_stay_strings() -> None:
    [(_, _, op)] = ops(products, stored(RESTOCKED, MUG, 3))
    for field in ("updated_at", "position", "version"):
        assert set(_sets(op)[field]) == {"$literal"}


@pytest.mark.parametrize("event", [REGISTERED, SHIPPED], ids=lambda e: type(e).__name__)
def test_products_ignore_registrations_and_shipping(event: DomainEvent) -> None:
    assert products.apply(stored(event, "x", 1)) == []


# -- customers ----------------------------------------------------------------------------

customers = PROJECTORS["customers"]


def test_customer_registered_starts_with_no_orders() -> None:
    assert ops(customers, stored(REGISTERED, CUSTOMER, 1)) == [
        (
            "customers",
            CUSTOMER,
            UpdateOne(
                {"_id": CUSTOMER},
                {
                    "$set": {
                        "email": "cara@example.com",
                        "name": "Cara",
                        "role": "CUSTOMER",
                        "order_count": 0,
                        "lifetime_value_cents": 0,
                        "position": 42,
                    }
                },
                upsert=True,
            ),
        )
    ]


@pytest.mark.parametrize(
    ("event", "count", "cents"), [(PLACED_ORDER, 1, 3997), (CANCELLED, -1, -3997)]
)
def test_orders_count_for_their_customer_and_cancellations_count_for_nothing(
    event: DomainEvent, count: int, cents: int
) -> None:
    assert ops(customers, stored(event, ORDER, 1)) == [
        (
            "customers",
            CUSTOMER,
            UpdateOne(
                {"_id": CUSTOMER},
                {
                    "$inc": {"order_count": count, "lifetime_value_cents": cents},
                    "$set": {"position": 42},
                },
            ),
        )
    ]


@pytest.mark.parametrize(
    "event", [CREATED, PRICE, RESTOCKED, SHIPPED], ids=lambda e: type(e).__name__
)
def test_customers_ignore_catalog_events_and_shipping(event: DomainEvent) -> None:
    assert customers.apply(stored(event, "x", 1)) == []


# -- sales --------------------------------------------------------------------------------

sales = PROJECTORS["sales"]


def test_order_placed_adds_to_totals_its_day_and_each_product() -> None:
    assert ops(sales, stored(PLACED_ORDER, ORDER, 1)) == [
        (
            "sales_totals",
            "totals",
            UpdateOne(
                {"_id": "totals"},
                {
                    "$inc": {"revenue_cents": 3997, "order_count": 1, "cancelled_count": 0},
                    "$max": {"updated_at": PLACED},
                    "$set": {"position": 42},
                },
                upsert=True,
            ),
        ),
        (
            "sales_daily",
            "2025-03-31",
            UpdateOne(
                {"_id": "2025-03-31"},
                {
                    "$inc": {"revenue_cents": 3997, "order_count": 1},
                    "$set": {"date": "2025-03-31", "position": 42},
                },
                upsert=True,
            ),
        ),
        (
            "sales_products",
            MUG,
            UpdateOne(
                {"_id": MUG},
                {
                    "$inc": {"units_sold": 2, "revenue_cents": 2500},
                    "$set": {"product_id": MUG, "name": "Blue mug", "position": 42},
                },
                upsert=True,
            ),
        ),
        (
            "sales_products",
            TEA,
            UpdateOne(
                {"_id": TEA},
                {
                    "$inc": {"units_sold": 3, "revenue_cents": 1497},
                    "$set": {"product_id": TEA, "name": "Green tea", "position": 42},
                },
                upsert=True,
            ),
        ),
    ]


def test_order_cancelled_reverses_its_placing_day_not_the_cancel_day() -> None:
    assert ops(sales, stored(CANCELLED, ORDER, 2)) == [
        (
            "sales_totals",
            "totals",
            UpdateOne(
                {"_id": "totals"},
                {
                    "$inc": {"revenue_cents": -3997, "order_count": -1, "cancelled_count": 1},
                    "$max": {"updated_at": LATER},
                    "$set": {"position": 42},
                },
                upsert=True,
            ),
        ),
        (
            "sales_daily",
            "2025-03-31",
            UpdateOne(
                {"_id": "2025-03-31"},
                {
                    "$inc": {"revenue_cents": -3997, "order_count": -1},
                    "$set": {"date": "2025-03-31", "position": 42},
                },
                upsert=True,
            ),
        ),
        (
            "sales_products",
            MUG,
            UpdateOne(
                {"_id": MUG},
                {"$inc": {"units_sold": -2, "revenue_cents": -2500}, "$set": {"position": 42}},
            ),
        ),
        (
            "sales_products",
            TEA,
            UpdateOne(
                {"_id": TEA},
                {"$inc": {"units_sold": -3, "revenue_cents": -1497}, "$set": {"position": 42}},
            ),
        ),
    ]


@pytest.mark.parametrize(
    "event", [REGISTERED, CREATED, PRICE, RESTOCKED, SHIPPED], ids=lambda e: type(e).__name__
)
def test_sales_ignore_everything_but_placing_and_cancelling(event: DomainEvent) -> None:
    assert sales.apply(stored(event, "x", 1)) == []


def test_unknown_event_types_are_ignored_by_every_projector() -> None:
    future = StoredEvent(1, "order", ORDER, 3, "OrderRefunded", {"order_id": ORDER}, LATER)
    assert all(p.apply(future) == [] for p in PROJECTORS.values())


# -- document times -------------------------------------------------------------------------


def test_event_times_become_utc_milliseconds() -> None:
    moment = event_time("2025-04-01T01:30:00.123456+02:00")
    assert moment == datetime(2025, 3, 31, 23, 30, 0, 123000, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


def test_the_sales_day_is_the_utc_day() -> None:
    late_evening_in_new_york = datetime(2025, 3, 31, 21, 0, tzinfo=timezone(timedelta(hours=-4)))
    assert sales_day(late_evening_in_new_york) == "2025-04-01"


# -- verify's comparison ------------------------------------------------------------------


def _product(**changes: object) -> dict[str, object]:
    return {"_id": MUG, "stock": 3, "in_stock": True, "updated_at": PLACED, **changes}


def test_equal_documents_have_no_differences_whatever_their_positions() -> None:
    projected = {"products": [_product(position=9, stock=Int64(3))], "customers": []}
    expected = {"products": [_product()], "customers": []}
    assert compare_documents(projected, expected) == []


def test_datetimes_compare_as_instants_across_time_zones() -> None:
    in_paris = PLACED.astimezone(timezone(timedelta(hours=2)))
    assert compare_documents({"p": [_product(updated_at=in_paris)]}, {"p": [_product()]}) == []


def test_missing_and_extra_documents_are_named() -> None:
    differences = compare_documents(
        {"products": [_product(_id="extra-id")]}, {"products": [_product()]}
    )
    assert differences == [
        f"products/extra-id: extra in the projection, absent from the write store "
        f"(projection: {{_id: 'extra-id', stock: 3, in_stock: True, "
        f"updated_at: {PLACED.isoformat(timespec='milliseconds')}}})",
        f"products/{MUG}: missing from the projection (write store: {{_id: '{MUG}', stock: 3, "
        f"in_stock: True, updated_at: {PLACED.isoformat(timespec='milliseconds')}}})",
    ]


def test_differing_fields_show_both_values_down_to_nested_list_items() -> None:
    projected = {
        "orders": [{"_id": ORDER, "lines": [{"quantity": 2}], "customer": {"name": "Cara"}, "x": 1}]
    }
    expected = {
        "orders": [
            {"_id": ORDER, "lines": [{"quantity": 3}, {"quantity": 1}], "customer": {}, "y": 2}
        ]
    }
    assert compare_documents(projected, expected) == [
        f"orders/{ORDER}: customer.name: projection 'Cara', absent in the write store",
        f"orders/{ORDER}: lines: projection has 1 items, write store 2",
        f"orders/{ORDER}: lines[0].quantity: projection 2 != write store 3",
        f"orders/{ORDER}: x: projection 1, absent in the write store",
        f"orders/{ORDER}: y: absent in the projection, write store 2",
    ]


def test_a_boolean_is_not_a_number_and_a_date_is_not_a_string() -> None:
    assert compare_documents(
        {"p": [_product(in_stock=1, updated_at=PLACED.isoformat())]}, {"p": [_product()]}
    ) == [
        f"p/{MUG}: in_stock: projection 1 != write store True",
        f"p/{MUG}: updated_at: projection '{PLACED.isoformat()}' != write store "
        f"{PLACED.isoformat(timespec='milliseconds')}",
    ]


def test_a_collection_only_one_side_has_is_compared_against_nothing() -> None:
    assert compare_documents({}, {"sales_totals": [{"_id": "totals", "order_count": 1}]}) == [
        "sales_totals/totals: missing from the projection (write store: {_id: 'totals', "
        "order_count: 1})"
    ]
