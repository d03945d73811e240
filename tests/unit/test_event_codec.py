"""The event codec: events to log rows and back, old versions upcast, bad rows named."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from tests.unit.test_projectors import ALL_EVENTS, PLACED_ORDER
from workers.log_reader import decode_row
from workers.projection import UndecodableEvent, UnknownEvent
from writes.event_codec import EVENTS, EventCodec, EventDecodeError, UnknownEventType
from writes.events import DomainEvent, OrderLineData, OrderPlaced, ProductRestocked


def through_json(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data))


@pytest.mark.parametrize(
    "event", [event for event, _, _ in ALL_EVENTS], ids=lambda e: type(e).__name__
)
def test_every_event_comes_back_as_the_dataclass_it_was(event: DomainEvent) -> None:
    row = EVENTS.encode(event)
    # The row holds what the log always held: the class name, v1, the asdict payload.
    assert (row.type, row.schema_version) == (type(event).__name__, 1)
    assert row.data == dataclasses.asdict(event)
    decoded = EVENTS.decode(row.type, row.schema_version, through_json(row.data))
    assert decoded == event
    assert type(decoded) is type(event)


@pytest.mark.parametrize(
    "event", [event for event, _, _ in ALL_EVENTS], ids=lambda e: type(e).__name__
)
def test_the_json_written_to_the_log_is_the_asdict_payload(event: DomainEvent) -> None:
    written = EVENTS.encode_json(event)
    row = EVENTS.encode(event)
    assert (written.type, written.schema_version) == (row.type, row.schema_version)
    assert json.loads(written.data) == through_json(row.data)
    # Field order too, so the stored text reads as it always did.
    assert list(json.loads(written.data)) == list(row.data)


def test_only_registered_classes_are_written_as_json() -> None:
    with pytest.raises(UnknownEventType):
        V2.codec.encode_json(ProductRestocked("p-1", 4, "t"))


def test_nested_data_comes_back_as_dataclasses_in_tuples() -> None:
    row = EVENTS.encode(PLACED_ORDER)
    decoded = EVENTS.decode(row.type, 1, through_json(row.data))
    assert isinstance(decoded, OrderPlaced)
    assert isinstance(decoded.lines, tuple)
    assert all(isinstance(line, OrderLineData) for line in decoded.lines)
    assert decoded.customer == PLACED_ORDER.customer
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.total_cents = 1  # type: ignore[misc]


class V2:
    """The test's own registry: ProductRestocked at version 2, which names the restock's
    reason; version 1 rows (the shop's) read as "unknown"."""

    @dataclass(frozen=True)
    class ProductRestocked(DomainEvent):
        stream_type: ClassVar[str] = "product"
        schema_version: ClassVar[int] = 2
        product_id: str
        quantity: int
        reason: str
        restocked_at: str

    @staticmethod
    def with_reason(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "reason": "unknown"}

    codec = EventCodec([ProductRestocked], {("ProductRestocked", 1): with_reason})


def test_a_v1_row_is_upcast_and_read_as_v2() -> None:
    v1 = EVENTS.encode(ProductRestocked("p-1", 4, "2026-01-02T03:04:05.000+00:00"))
    assert v1.schema_version == 1

    read = V2.codec.decode(v1.type, v1.schema_version, through_json(v1.data))

    assert read == V2.ProductRestocked("p-1", 4, "unknown", "2026-01-02T03:04:05.000+00:00")
    # A v2 row is read as it is, and written at v2.
    v2 = V2.codec.encode(V2.ProductRestocked("p-1", 4, "damaged", "t"))
    assert (v2.type, v2.schema_version, v2.data["reason"]) == ("ProductRestocked", 2, "damaged")
    assert V2.codec.decode(v2.type, 2, v2.data).reason == "damaged"  # type: ignore[attr-defined]


def test_upcasters_run_in_version_order() -> None:
    @dataclass(frozen=True)
    class Renamed(DomainEvent):
        stream_type: ClassVar[str] = "product"
        schema_version: ClassVar[int] = 3
        units: int

    steps: list[int] = []

    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        steps.append(1)
        return {"amount": data.pop("qty")}

    def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
        steps.append(2)
        return {"units": data["amount"]}

    codec = EventCodec([Renamed], {("Renamed", 2): v2_to_v3, ("Renamed", 1): v1_to_v2})
    assert codec.decode("Renamed", 1, {"qty": 5}) == Renamed(5)
    assert steps == [1, 2]
    assert codec.decode("Renamed", 2, {"amount": 6}) == Renamed(6)
    assert steps == [1, 2, 2]


def test_a_version_newer_than_the_code_does_not_decode() -> None:
    row = V2.codec.encode(V2.ProductRestocked("p-1", 4, "damaged", "t"))
    with pytest.raises(
        EventDecodeError, match=r"ProductRestocked v2: this code knows versions 1 to 1"
    ):
        EVENTS.decode(row.type, row.schema_version, row.data)
    assert isinstance(decode_row(row.type, 2, row.data), UndecodableEvent)


def test_an_unknown_type_is_named_as_unknown_not_as_undecodable() -> None:
    with pytest.raises(UnknownEventType):
        EVENTS.decode("OrderRefunded", 1, {"order_id": "o"})
    assert decode_row("OrderRefunded", 7, {"whatever": 1}) == UnknownEvent("OrderRefunded")


def _placed(**changes: Any) -> dict[str, Any]:
    return {**through_json(EVENTS.encode(PLACED_ORDER).data), **changes}


@pytest.mark.parametrize(
    ("version", "data", "says"),
    [
        (1, {k: v for k, v in _placed().items() if k != "total_cents"}, "lacks ['total_cents']"),
        (1, _placed(refund=True), "has unexpected ['refund']"),
        (1, _placed(lines=[{"product_id": "p", "quantity": 1}]), "OrderLineData lacks"),
        (1, _placed(customer=None), "OrderCustomerData needs a JSON object, not None"),
        (1, ["not", "an", "object"], "not a JSON object"),
        (None, _placed(), "OrderPlaced vNone"),
        (0, _placed(), "OrderPlaced v0"),
    ],
    ids=["missing", "extra", "nested-missing", "nested-null", "not-object", "no-version", "v0"],
)
def test_malformed_rows_become_undecodable_with_the_reason(
    version: int | None, data: Any, says: str
) -> None:
    with pytest.raises(EventDecodeError, match=r"^OrderPlaced") as raised:
        EVENTS.decode("OrderPlaced", version, data)
    assert says in str(raised.value)
    row = decode_row("OrderPlaced", version, data)
    assert isinstance(row, UndecodableEvent)
    assert row.error is not None
    assert says in str(row.error)


def test_a_codec_refuses_version_steps_it_cannot_take() -> None:
    with pytest.raises(ValueError, match=r"ProductRestocked v2 has no upcaster from v\[1\]"):
        EventCodec([V2.ProductRestocked])
    with pytest.raises(ValueError, match="upcasters for no registered version step"):
        EventCodec([ProductRestocked], {("ProductRestocked", 1): V2.with_reason})
    with pytest.raises(ValueError, match="two event classes are named ProductRestocked"):
        EventCodec(
            [ProductRestocked, V2.ProductRestocked], {("ProductRestocked", 1): V2.with_reason}
        )


def test_a_codec_encodes_only_its_own_classes() -> None:
    with pytest.raises(UnknownEventType):
        V2.codec.encode(ProductRestocked("p-1", 4, "t"))
    with pytest.raises(UnknownEventType):
        EVENTS.encode(V2.ProductRestocked("p-1", 4, "damaged", "t"))


def test_event_fields_are_limited_to_what_decodes() -> None:
    @dataclass(frozen=True)
    class Listed(DomainEvent):
        stream_type: ClassVar[str] = "order"
        ids: list[str]

    with pytest.raises(TypeError, match="event fields hold"):
        EventCodec([Listed])
