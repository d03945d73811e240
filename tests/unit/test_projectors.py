"""Projectors are pure folds: each event changes exactly the expected documents.

Events are built from the real event dataclasses and round-tripped through the event
codec and JSON, as they come out of the event log. The comparison behind `shop projections verify` is
a pure function and is tested here too.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bson.int64 import Int64

from reads.documents import INDEXES, event_time, sales_day
from tests.reference.histories import stored as as_logged
from workers.log_reader import decode_row
from workers.projection import DocKey, Document, Projector, StoredEvent, UnknownEvent, fold_events
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
    """`event` as the log hands it to projectors (encoded, through JSON, decoded)."""
    return as_logged(event, stream_id, version, position, LATER)


def fold(projector: Projector, event: StoredEvent, *documents: Document) -> dict[DocKey, Document]:
    """`projector`'s fold of `event` over `documents` (keyed by their collection and
    `_id`), checking that it changes none of them in place."""
    by_key = {(doc["collection"], doc["_id"]): _without_collection(doc) for doc in documents}
    before = copy.deepcopy(by_key)
    changed = projector.fold(event, by_key)
    assert by_key == before, "a fold changed its inputs"
    assert set(changed) <= set(projector.touches(event)), "a fold changed an untouched document"
    return changed


def _without_collection(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if k != "collection"}


def existing(collection: str, **fields: Any) -> Document:
    return {"collection": collection, **fields}


MUG_DOC = existing(
    "products", _id=MUG, sku="MUG-1", name="Blue mug", description="Holds tea",
    price_cents=1250, stock=3, in_stock=True, units_sold=0, version=1, updated_at=PLACED,
    position=2,
)  # fmt: skip
TEA_DOC = existing(
    "products", _id=TEA, sku="TEA-1", name="Green tea", description="Loose leaf",
    price_cents=499, stock=10, in_stock=True, units_sold=4, version=1, updated_at=PLACED,
    position=3,
)  # fmt: skip
CARA = existing(
    "customers", _id=CUSTOMER, email="cara@example.com", name="Cara", role="CUSTOMER",
    order_count=2, lifetime_value_cents=5000, position=1,
)  # fmt: skip


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
def test_every_change_stays_in_its_projections_collections_and_records_the_position(
    event: DomainEvent, stream_id: str, version: int
) -> None:
    for projector in PROJECTORS.values():
        at = stored(event, stream_id, version, 77)
        # Every touched document exists, so every fold that changes something does.
        present = {key: {"_id": key[1], **_SOME_FIELDS} for key in projector.touches(at)}
        changed = projector.fold(at, present)
        assert set(changed) == set(projector.touches(at))
        for (collection, doc_id), document in changed.items():
            assert collection in projector.collections
            assert (document["_id"], document["position"]) == (doc_id, 77)


# Counters and times every document that folds add to or compare with may hold.
_SOME_FIELDS: dict[str, Any] = {
    "stock": 5, "units_sold": 1, "order_count": 1, "lifetime_value_cents": 100,
    "revenue_cents": 100, "cancelled_count": 0, "updated_at": PLACED,
}  # fmt: skip


@pytest.mark.parametrize(("event", "stream_id", "version"), ALL_EVENTS)
def test_a_fold_reads_only_the_documents_it_names(
    event: DomainEvent, stream_id: str, version: int
) -> None:
    unrelated: dict[DocKey, Document] = {
        ("orders", "zzz"): {"_id": "zzz", "status": "PLACED"},
        ("products", "zzz"): {"_id": "zzz", "stock": 1, "units_sold": 1},
        ("customers", "zzz"): {"_id": "zzz", "order_count": 9, "lifetime_value_cents": 9},
        ("sales_products", "zzz"): {"_id": "zzz", "units_sold": 1, "revenue_cents": 1},
    }
    at = stored(event, stream_id, version)
    for projector in PROJECTORS.values():
        named = {key: {"_id": key[1], **_SOME_FIELDS} for key in projector.touches(at)}
        assert projector.fold(at, named) == projector.fold(at, {**unrelated, **named})


def test_projectors_import_only_event_classes_and_document_types() -> None:
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


# -- orders -------------------------------------------------------------------------------

orders = PROJECTORS["orders"]

SUMMARY: Document = {
    "_id": ORDER,
    "customer": {"id": CUSTOMER, "name": "Cara", "email": "cara@example.com"},
    "status": "PLACED",
    "lines": [
        {"product_id": MUG, "sku": "MUG-1", "name": "Blue mug", "unit_price_cents": 1250,
         "quantity": 2, "line_total_cents": 2500},
        {"product_id": TEA, "sku": "TEA-1", "name": "Green tea", "unit_price_cents": 499,
         "quantity": 3, "line_total_cents": 1497},
    ],
    "item_count": 5,
    "total_cents": 3997,
    "placed_at": PLACED,
    "updated_at": PLACED,
    "version": 1,
    "position": 42,
}  # fmt: skip


def test_order_placed_creates_the_summary_with_customer_and_lines() -> None:
    assert orders.touches(stored(PLACED_ORDER, ORDER, 1)) == (("orders", ORDER),)
    assert fold(orders, stored(PLACED_ORDER, ORDER, 1)) == {("orders", ORDER): SUMMARY}


@pytest.mark.parametrize(
    ("event", "status"), [(CANCELLED, "CANCELLED"), (SHIPPED, "SHIPPED")], ids=["cancel", "ship"]
)
def test_cancel_and_ship_move_status_updated_at_and_version(
    event: DomainEvent, status: str
) -> None:
    changed = fold(orders, stored(event, ORDER, 2, position=50), existing("orders", **SUMMARY))
    moved = {**SUMMARY, "status": status, "updated_at": LATER, "version": 2, "position": 50}
    assert changed == {("orders", ORDER): moved}


@pytest.mark.parametrize("event", [CANCELLED, SHIPPED], ids=["cancel", "ship"])
def test_moving_an_order_the_projection_does_not_hold_changes_nothing(
    event: DomainEvent,
) -> None:
    assert fold(orders, stored(event, ORDER, 2)) == {}


@pytest.mark.parametrize(
    "event", [REGISTERED, CREATED, PRICE, RESTOCKED], ids=lambda e: type(e).__name__
)
def test_orders_ignore_customer_and_catalog_events(event: DomainEvent) -> None:
    assert orders.touches(stored(event, "x", 1)) == ()
    assert fold(orders, stored(event, "x", 1)) == {}


# -- products -----------------------------------------------------------------------------

products = PROJECTORS["products"]


def product(doc: Document, **changes: Any) -> Document:
    return {**_without_collection(doc), **changes}


def test_product_created_starts_with_nothing_sold() -> None:
    assert fold(products, stored(CREATED, MUG, 1)) == {
        ("products", MUG): product(MUG_DOC, position=42)
    }


def test_a_product_created_without_stock_is_not_in_stock() -> None:
    empty = dataclasses.replace(CREATED, stock=0)
    [created] = fold(products, stored(empty, MUG, 1)).values()
    assert (created["stock"], created["in_stock"]) == (0, False)


def test_price_change_sets_price_version_and_updated_at() -> None:
    assert fold(products, stored(PRICE, MUG, 2), MUG_DOC) == {
        ("products", MUG): product(
            MUG_DOC, price_cents=1300, version=2, updated_at=LATER, position=42
        )
    }


def test_restock_adds_stock_and_bumps_version() -> None:
    sold_out = {**MUG_DOC, "stock": 0, "in_stock": False}
    assert fold(products, stored(RESTOCKED, MUG, 3), sold_out) == {
        ("products", MUG): product(
            sold_out, stock=5, in_stock=True, version=3, updated_at=LATER, position=42
        )
    }


def test_order_placed_takes_stock_and_counts_units_without_a_new_version() -> None:
    assert fold(products, stored(PLACED_ORDER, ORDER, 1), MUG_DOC, TEA_DOC) == {
        ("products", MUG): product(MUG_DOC, stock=1, units_sold=2, updated_at=PLACED,
                                   position=42),
        ("products", TEA): product(TEA_DOC, stock=7, units_sold=7, updated_at=PLACED,
                                   position=42),
    }  # fmt: skip


def test_the_last_unit_sold_takes_a_product_out_of_stock() -> None:
    last = dataclasses.replace(
        PLACED_ORDER,
        lines=(OrderLineData(MUG, "MUG-1", "Blue mug", 1250, 3, 3750),),
    )
    [sold_out] = fold(products, stored(last, ORDER, 1), MUG_DOC).values()
    assert (sold_out["stock"], sold_out["in_stock"]) == (0, False)


def test_an_order_naming_a_product_on_two_lines_takes_both() -> None:
    twice = dataclasses.replace(
        PLACED_ORDER,
        lines=(
            OrderLineData(MUG, "MUG-1", "Blue mug", 1250, 1, 1250),
            OrderLineData(MUG, "MUG-1", "Blue mug", 1250, 2, 2500),
        ),
    )
    [mug] = fold(products, stored(twice, ORDER, 1), MUG_DOC).values()
    assert (mug["stock"], mug["units_sold"], mug["in_stock"]) == (0, 3, False)


def test_order_cancelled_puts_stock_back_at_the_cancel_time() -> None:
    assert fold(products, stored(CANCELLED, ORDER, 2), MUG_DOC, TEA_DOC) == {
        ("products", MUG): product(MUG_DOC, stock=5, units_sold=-2, updated_at=LATER,
                                   position=42),
        ("products", TEA): product(TEA_DOC, stock=13, units_sold=1, updated_at=LATER,
                                   position=42),
    }  # fmt: skip


@pytest.mark.parametrize(
    "event", [PRICE, RESTOCKED, PLACED_ORDER, CANCELLED], ids=lambda e: type(e).__name__
)
def test_events_about_products_the_projection_does_not_hold_change_nothing(
    event: DomainEvent,
) -> None:
    assert fold(products, stored(event, MUG, 2)) == {}


@pytest.mark.parametrize("event", [REGISTERED, SHIPPED], ids=lambda e: type(e).__name__)
def test_products_ignore_registrations_and_shipping(event: DomainEvent) -> None:
    assert products.touches(stored(event, "x", 1)) == ()
    assert fold(products, stored(event, "x", 1)) == {}


# -- customers ----------------------------------------------------------------------------

customers = PROJECTORS["customers"]


def test_customer_registered_starts_with_no_orders() -> None:
    assert fold(customers, stored(REGISTERED, CUSTOMER, 1)) == {
        ("customers", CUSTOMER): {
            "_id": CUSTOMER, "email": "cara@example.com", "name": "Cara", "role": "CUSTOMER",
            "order_count": 0, "lifetime_value_cents": 0, "position": 42,
        }
    }  # fmt: skip


@pytest.mark.parametrize(
    ("event", "count", "cents"), [(PLACED_ORDER, 3, 8997), (CANCELLED, 1, 1003)]
)
def test_orders_count_for_their_customer_and_cancellations_count_for_nothing(
    event: DomainEvent, count: int, cents: int
) -> None:
    assert fold(customers, stored(event, ORDER, 1), CARA) == {
        ("customers", CUSTOMER): {
            **_without_collection(CARA), "order_count": count, "lifetime_value_cents": cents,
            "position": 42,
        }
    }  # fmt: skip


@pytest.mark.parametrize("event", [PLACED_ORDER, CANCELLED], ids=lambda e: type(e).__name__)
def test_orders_of_a_customer_the_projection_does_not_hold_change_nothing(
    event: DomainEvent,
) -> None:
    assert fold(customers, stored(event, ORDER, 1)) == {}


@pytest.mark.parametrize(
    "event", [CREATED, PRICE, RESTOCKED, SHIPPED], ids=lambda e: type(e).__name__
)
def test_customers_ignore_catalog_events_and_shipping(event: DomainEvent) -> None:
    assert customers.touches(stored(event, "x", 1)) == ()
    assert fold(customers, stored(event, "x", 1)) == {}


# -- sales --------------------------------------------------------------------------------

sales = PROJECTORS["sales"]
TOTALS = ("sales_totals", "totals")
DAY = ("sales_daily", "2025-03-31")


def test_the_first_order_placed_creates_totals_its_day_and_each_product() -> None:
    assert fold(sales, stored(PLACED_ORDER, ORDER, 1)) == {
        TOTALS: {"_id": "totals", "revenue_cents": 3997, "order_count": 1,
                 "cancelled_count": 0, "updated_at": PLACED, "position": 42},
        DAY: {"_id": "2025-03-31", "revenue_cents": 3997, "order_count": 1,
              "date": "2025-03-31", "position": 42},
        ("sales_products", MUG): {"_id": MUG, "units_sold": 2, "revenue_cents": 2500,
                                  "product_id": MUG, "name": "Blue mug", "position": 42},
        ("sales_products", TEA): {"_id": TEA, "units_sold": 3, "revenue_cents": 1497,
                                  "product_id": TEA, "name": "Green tea", "position": 42},
    }  # fmt: skip


SOLD_TOTALS = existing(
    "sales_totals", _id="totals", revenue_cents=10_000, order_count=4, cancelled_count=1,
    updated_at=LATER + timedelta(days=1), position=9,
)  # fmt: skip
SOLD_DAY = existing(
    "sales_daily", _id="2025-03-31", revenue_cents=5000, order_count=2, date="2025-03-31",
    position=9,
)  # fmt: skip
SOLD_MUG = existing(
    "sales_products", _id=MUG, product_id=MUG, name="Old mug name", units_sold=4,
    revenue_cents=5000, position=9,
)  # fmt: skip


def test_order_placed_adds_to_what_was_sold_and_names_the_product_anew() -> None:
    changed = fold(sales, stored(PLACED_ORDER, ORDER, 1), SOLD_TOTALS, SOLD_DAY, SOLD_MUG)
    # The totals keep their latest moment: an order's time can be earlier than it.
    assert changed[TOTALS] == {**_without_collection(SOLD_TOTALS), "revenue_cents": 13_997,
                               "order_count": 5, "position": 42}  # fmt: skip
    assert changed[DAY] == {**_without_collection(SOLD_DAY), "revenue_cents": 8997,
                            "order_count": 3, "position": 42}  # fmt: skip
    assert changed[("sales_products", MUG)] == {
        **_without_collection(SOLD_MUG), "name": "Blue mug", "units_sold": 6,
        "revenue_cents": 7500, "position": 42,
    }  # fmt: skip


def test_order_cancelled_reverses_its_placing_day_not_the_cancel_day() -> None:
    changed = fold(sales, stored(CANCELLED, ORDER, 2), SOLD_TOTALS, SOLD_DAY, SOLD_MUG)
    assert changed == {
        TOTALS: {**_without_collection(SOLD_TOTALS), "revenue_cents": 6003, "order_count": 3,
                 "cancelled_count": 2, "position": 42},
        DAY: {**_without_collection(SOLD_DAY), "revenue_cents": 1003, "order_count": 1,
              "position": 42},
        # A cancellation keeps the product's name, and reverses only what was counted:
        # TEA was never counted, so it stays absent.
        ("sales_products", MUG): {**_without_collection(SOLD_MUG), "units_sold": 2,
                                  "revenue_cents": 2500, "position": 42},
    }  # fmt: skip


def test_a_cancellation_moves_the_latest_moment_forward() -> None:
    early = {**SOLD_TOTALS, "updated_at": PLACED}
    changed = fold(sales, stored(CANCELLED, ORDER, 2), early)
    assert changed[TOTALS]["updated_at"] == LATER


@pytest.mark.parametrize(
    "event", [REGISTERED, CREATED, PRICE, RESTOCKED, SHIPPED], ids=lambda e: type(e).__name__
)
def test_sales_ignore_everything_but_placing_and_cancelling(event: DomainEvent) -> None:
    assert sales.touches(stored(event, "x", 1)) == ()
    assert fold(sales, stored(event, "x", 1)) == {}


def test_unknown_event_types_are_ignored_by_every_projector() -> None:
    refunded = decode_row("OrderRefunded", 1, {"order_id": ORDER})
    assert refunded == UnknownEvent("OrderRefunded")
    future = StoredEvent(1, "order", ORDER, 3, refunded, LATER)
    for projector in PROJECTORS.values():
        assert projector.touches(future) == ()
        assert projector.fold(future, {}) == {}


def test_fold_events_folds_a_history_in_order() -> None:
    history = [stored(CREATED, MUG, 1, 1), stored(RESTOCKED, MUG, 2, 2),
               stored(PLACED_ORDER, ORDER, 1, 3), stored(CANCELLED, ORDER, 2, 4)]  # fmt: skip
    documents: dict[DocKey, Document] = {}
    changed = fold_events(products, history, documents)
    assert changed == {("products", MUG)}  # TEA was never created: nothing to move
    assert documents[("products", MUG)]["stock"] == 3 + 5
    assert documents[("products", MUG)]["units_sold"] == 0
    assert documents[("products", MUG)]["position"] == 4


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


def test_an_order_replayed_after_later_events_keeps_the_products_latest_change() -> None:
    # A retry of a parked order: the product was changed since by a later event.
    later = {**MUG_DOC, "updated_at": LATER + timedelta(hours=1), "position": 90}
    [mug] = fold(products, stored(PLACED_ORDER, ORDER, 1, position=50), later).values()
    assert (mug["stock"], mug["units_sold"]) == (1, 2)
    assert (mug["updated_at"], mug["position"]) == (LATER + timedelta(hours=1), 90)
