"""Opaque keyset cursors: what they encode, and every way a cursor is refused."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from reads.orders import NEWEST_FIRST
from reads.paging import (
    MAX_PAGE,
    BadCursor,
    Ordering,
    Page,
    PageRequest,
    PageSizeError,
    SortField,
    canonical_id,
    check_page_size,
    cursor_for,
    decode_cursor,
    page_of,
    page_request,
    windowed,
)
from reads.products import BY_NAME, LOW_STOCK_FIRST

ORDER_ID = "0b7e6a52-3c1f-4d7e-9a51-2f0c5e1d9a11"
PLACED_AT = datetime(2026, 3, 1, 12, 30, 45, 123000, tzinfo=UTC)


def _raw(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_a_cursor_round_trips_its_sort_key_values_exactly() -> None:
    doc = {"_id": ORDER_ID, "placed_at": PLACED_AT, "status": "PLACED"}

    cursor = cursor_for(doc, NEWEST_FIRST)

    assert decode_cursor(cursor, NEWEST_FIRST) == (PLACED_AT, ORDER_ID)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor), "urlsafe, unpadded"


def test_datetimes_keep_their_milliseconds_and_come_back_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=plus_two)

    (decoded, _) = decode_cursor(
        cursor_for({"_id": ORDER_ID, "placed_at": moment}, NEWEST_FIRST), NEWEST_FIRST
    )

    assert decoded == moment
    assert decoded.tzinfo == UTC
    assert decoded.microsecond == 999000


def test_a_naive_datetime_is_taken_as_utc() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5, 6000)
    cursor = cursor_for({"_id": ORDER_ID, "placed_at": naive}, NEWEST_FIRST)

    assert decode_cursor(cursor, NEWEST_FIRST)[0] == naive.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("ordering", "doc", "values"),
    [
        (
            BY_NAME,
            {"_id": ORDER_ID, "name": 'Blue mug ☕ "quoted"'},
            ('Blue mug ☕ "quoted"', ORDER_ID),
        ),
        (LOW_STOCK_FIRST, {"_id": ORDER_ID, "stock": 0}, (0, ORDER_ID)),
    ],
)
def test_other_orderings_round_trip(
    ordering: Ordering, doc: dict[str, Any], values: tuple[Any, ...]
) -> None:
    assert decode_cursor(cursor_for(doc, ordering), ordering) == values


def test_a_cursor_is_not_readable_json() -> None:
    cursor = cursor_for({"_id": ORDER_ID, "name": "Blue mug"}, BY_NAME)

    assert "Blue" not in cursor
    assert "{" not in cursor


@pytest.mark.parametrize(
    ("issued_by", "doc", "read_by"),
    [
        (NEWEST_FIRST, {"_id": ORDER_ID, "placed_at": PLACED_AT}, BY_NAME),
        (BY_NAME, {"_id": ORDER_ID, "name": "x"}, LOW_STOCK_FIRST),
        (LOW_STOCK_FIRST, {"_id": ORDER_ID, "stock": 3}, NEWEST_FIRST),
    ],
)
def test_another_listings_cursor_is_refused(
    issued_by: Ordering, doc: dict[str, Any], read_by: Ordering
) -> None:
    with pytest.raises(BadCursor, match="another listing"):
        decode_cursor(cursor_for(doc, issued_by), read_by)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "abc=",
        "%%%",
        "a" * 5000,
        _raw([1, 2]),
        _raw({"k": "orders:newest_first"}),
        _raw({"k": "orders:newest_first", "v": [], "x": 1}),
        _raw({"k": "orders:newest_first", "v": [{"$date": 0}]}),
        _raw({"k": "orders:newest_first", "v": "nope"}),
        _raw({"k": "orders:newest_first", "v": [{"$date": 0}, ORDER_ID, 1]}),
        _raw({"k": "orders:newest_first", "v": ["2026-01-01T00:00:00Z", ORDER_ID]}),
        _raw({"k": "orders:newest_first", "v": [{"$date": 1.5}, ORDER_ID]}),
        _raw({"k": "orders:newest_first", "v": [{"$date": True}, ORDER_ID]}),
        _raw({"k": "orders:newest_first", "v": [{"$date": 10**20}, ORDER_ID]}),
        _raw({"k": "orders:newest_first", "v": [{"$date": 0}, "not-a-uuid"]}),
        _raw({"k": "orders:newest_first", "v": [{"$date": 0}, ORDER_ID.upper()]}),
        _raw({"k": "orders:newest_first", "v": [{"$date": 0}, 7]}),
        base64.urlsafe_b64encode(b"\xff\xfe not json").decode(),
        base64.urlsafe_b64encode(b"[" * 2000).decode().rstrip("="),
    ],
)
def test_malformed_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(BadCursor, match="cursor"):
        decode_cursor(cursor, NEWEST_FIRST)


@pytest.mark.parametrize(
    "values",
    [
        [True, ORDER_ID],
        [1.0, ORDER_ID],
        ["3", ORDER_ID],
        [2**63, ORDER_ID],
        [2**31, ORDER_ID],
        [-(2**31) - 1, ORDER_ID],
        [None, ORDER_ID],
    ],
)
def test_int_keys_must_be_32_bit_integers(values: list[Any]) -> None:
    """The write store keeps them in INTEGER columns, where the fallback binds them."""
    with pytest.raises(BadCursor):
        decode_cursor(_raw({"k": LOW_STOCK_FIRST.kind, "v": values}), LOW_STOCK_FIRST)


@pytest.mark.parametrize("value", [2**31 - 1, -(2**31), 0])
def test_int_keys_within_32_bits_pass(value: int) -> None:
    after = _raw({"k": LOW_STOCK_FIRST.kind, "v": [value, ORDER_ID]})
    assert decode_cursor(after, LOW_STOCK_FIRST) == (value, ORDER_ID)


@pytest.mark.parametrize("value", [5, None, "a\u0000b", "\ud800"])
def test_string_keys_must_be_strings_both_stores_can_hold(value: object) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(_raw({"k": BY_NAME.kind, "v": [value, ORDER_ID]}), BY_NAME)


def test_bad_cursor_and_page_size_errors_are_value_errors() -> None:
    assert issubclass(BadCursor, ValueError)
    assert issubclass(PageSizeError, ValueError)


@pytest.mark.parametrize("first", [0, -1, MAX_PAGE + 1, 10**9, True])
def test_page_sizes_outside_the_limit_are_refused(first: int) -> None:
    with pytest.raises(PageSizeError, match=f"between 1 and {MAX_PAGE}"):
        check_page_size(first)


@pytest.mark.parametrize("first", [1, 20, MAX_PAGE])
def test_page_sizes_within_the_limit_pass(first: int) -> None:
    check_page_size(first)


def test_the_keyset_filter_is_strictly_after_the_cursor_in_each_direction() -> None:
    mixed = Ordering(
        "t:mixed",
        (SortField("a", True, "int"), SortField("b", False, "str"), SortField("_id", False, "id")),
    )

    assert mixed.after((5, "x", ORDER_ID)) == {
        "a": {"$lte": 5},
        "$or": [
            {"a": {"$lt": 5}},
            {"a": 5, "b": {"$gt": "x"}},
            {"a": 5, "b": "x", "_id": {"$gt": ORDER_ID}},
        ],
    }
    assert mixed.sort() == [("a", -1), ("b", 1), ("_id", 1)]


def test_a_page_knows_its_cursors_and_whether_more_follow() -> None:
    docs = [{"_id": f"0000000{i}-0000-4000-8000-000000000000", "name": f"n{i}"} for i in range(4)]

    page = page_of(docs, BY_NAME, 3)

    assert page.items == docs[:3]
    assert page.has_next
    assert page.cursors == [cursor_for(doc, BY_NAME) for doc in docs[:3]]
    assert page.end_cursor == page.cursors[-1]
    last = page_of(docs[:2], BY_NAME, 3)
    assert (last.has_next, last.end_cursor) == (False, cursor_for(docs[1], BY_NAME))
    assert page_of([], BY_NAME, 3).end_cursor is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0B7E6A52-3C1F-4D7E-9A51-2F0C5E1D9A11", ORDER_ID),
        ("{0b7e6a52-3c1f-4d7e-9a51-2f0c5e1d9a11}", ORDER_ID),
        ("0b7e6a523c1f4d7e9a512f0c5e1d9a11", ORDER_ID),
        (ORDER_ID, ORDER_ID),
        ("not-a-uuid", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_ids_are_canonical_lowercase_uuids_or_nothing(raw: object, expected: str | None) -> None:
    assert canonical_id(raw) == expected


def test_a_request_pages_forward_with_first_or_backward_with_last() -> None:
    doc = {"_id": ORDER_ID, "placed_at": PLACED_AT}
    cursor = cursor_for(doc, NEWEST_FIRST)

    forward = page_request(NEWEST_FIRST, first=5, after=cursor)
    backward = page_request(NEWEST_FIRST, first=None, after=None, last=7, before=cursor)

    assert forward == PageRequest(5, backward=False, after=(PLACED_AT, ORDER_ID))
    assert forward.beyond == (PLACED_AT, ORDER_ID)
    assert backward == PageRequest(7, backward=True, before=(PLACED_AT, ORDER_ID))
    assert backward.beyond == (PLACED_AT, ORDER_ID)
    # Either cursor bounds the window, whichever end the page is taken from.
    window = page_request(NEWEST_FIRST, first=2, after=cursor, before=cursor)
    assert (window.after, window.before) == ((PLACED_AT, ORDER_ID), (PLACED_AT, ORDER_ID))
    assert page_request(NEWEST_FIRST, first=None, after=None, last=1).beyond is None


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (5, 5, "not both"),
        (None, None, "pass first .* or last"),
        (None, 0, "last must be between 1 and 100, got 0"),
        (None, MAX_PAGE + 1, "last must be between 1 and 100"),
        (0, None, "first must be between 1 and 100"),
        (None, True, "last must be between"),
    ],
)
def test_a_request_with_a_bad_size_or_both_sizes_is_refused(
    first: int | None, last: int | None, message: str
) -> None:
    with pytest.raises(PageSizeError, match=message):
        page_request(BY_NAME, first=first, after=None, last=last)


def test_a_before_cursor_is_checked_like_an_after_cursor() -> None:
    other = cursor_for({"_id": ORDER_ID, "stock": 3}, LOW_STOCK_FIRST)

    with pytest.raises(BadCursor, match="another listing"):
        page_request(BY_NAME, first=None, after=None, last=3, before=other)
    with pytest.raises(BadCursor, match="malformed"):
        page_request(BY_NAME, first=None, after=None, last=3, before="garbage!")


def test_the_reversed_ordering_flips_every_key_and_keeps_its_kind() -> None:
    reversed_order = NEWEST_FIRST.reversed()

    assert reversed_order.kind == NEWEST_FIRST.kind
    assert reversed_order.sort() == [("placed_at", 1), ("_id", 1)]
    assert reversed_order.reversed() == NEWEST_FIRST
    # Strictly after in the reversed order is strictly before in the listing's.
    assert reversed_order.after((PLACED_AT, ORDER_ID)) == {
        "placed_at": {"$gte": PLACED_AT},
        "$or": [
            {"placed_at": {"$gt": PLACED_AT}},
            {"placed_at": PLACED_AT, "_id": {"$gt": ORDER_ID}},
        ],
    }


def test_an_inclusive_keyset_filter_also_matches_the_cursors_own_document() -> None:
    assert BY_NAME.after(("mug", ORDER_ID), inclusive=True) == {
        "name": {"$gte": "mug"},
        "$or": [
            {"name": {"$gt": "mug"}},
            {"name": "mug", "_id": {"$gt": ORDER_ID}},
            {"name": "mug", "_id": ORDER_ID},
        ],
    }


def test_a_window_between_two_cursors_bounds_both_sides() -> None:
    low, high = ("a", ORDER_ID), ("z", ORDER_ID)
    request = PageRequest(3, backward=True, after=low, before=high)

    query = windowed({"in_stock": True}, BY_NAME, request)

    assert query == {
        "$and": [
            {"in_stock": True} | BY_NAME.after(low),
            BY_NAME.reversed().after(high),
        ]
    }
    assert windowed({}, BY_NAME, PageRequest(3)) == {}


def test_a_backward_page_is_fetched_in_reverse_and_handed_back_in_order() -> None:
    docs = [{"_id": f"0000000{i}-0000-4000-8000-000000000000", "name": f"n{i}"} for i in range(4)]
    fetched_from_the_end = docs[::-1]  # the scan walks the index in reverse

    page = page_of(fetched_from_the_end, BY_NAME, 3, backward=True, beyond=True)

    assert page.items == docs[1:]
    assert page.cursors == [cursor_for(doc, BY_NAME) for doc in docs[1:]]
    assert (page.start_cursor, page.end_cursor) == (page.cursors[0], page.cursors[-1])
    # More lay beyond the scan's end (before the page); `beyond`: something follows it.
    assert (page.has_previous, page.has_next) == (True, True)
    first_page = page_of(docs[:2][::-1], BY_NAME, 3, backward=True)
    assert first_page.items == docs[:2]
    assert (first_page.has_previous, first_page.has_next) == (False, False)
    forward = page_of(docs, BY_NAME, 3, beyond=True)
    assert (forward.has_previous, forward.has_next) == (True, True)
    empty: Page[dict[str, str]] = page_of([], BY_NAME, 3, backward=True, beyond=True)
    assert (empty.start_cursor, empty.end_cursor, empty.has_next) == (None, None, True)
