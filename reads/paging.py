"""Keyset pagination over read-model documents: orderings, opaque cursors and pages.

A listing sorts on indexed fields with `_id` last as the tiebreaker, so every document
has a unique position in it. A cursor names the listing's ordering and the sort-key
values of the document it points at; the next page is the documents strictly after
those values. Documents inserted between two pages therefore land before or after the
cursor, never shifting what is left, so a walk sees no duplicates and skips nothing.

Paging runs both ways (Relay's cursor connections): `first` items after `after`, or the
`last` items before `before`, the latter by walking the same index in reverse. Either
cursor bounds the window whichever end a page is taken from (decision 0047).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

T = TypeVar("T")

MAX_PAGE = 100

ValueType = Literal["str", "int", "datetime", "id"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")
# Generous: the longest real cursor holds a product name of 200 characters.
_MAX_CURSOR_LENGTH = 4096
_MALFORMED = (
    "the cursor is malformed: pass a startCursor, endCursor or edge cursor exactly as returned"
)


class BadCursor(ValueError):
    """A cursor this listing did not issue: malformed, tampered with, or another listing's."""


class PageSizeError(ValueError):
    """A page size outside 1..MAX_PAGE, or both `first` and `last` (or neither)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; `cursors[i]` points at `items[i]` (a Relay edge's cursor)."""

    items: list[T]
    has_next: bool
    end_cursor: str | None
    cursors: list[str] = field(default_factory=list)
    has_previous: bool = False

    @property
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None


@dataclass(frozen=True)
class PageRequest:
    """A checked page request: `size` items from the start (or, `backward`, the end) of
    the window strictly between the sort-key values `after` and `before`."""

    size: int
    backward: bool = False
    after: tuple[Any, ...] | None = None
    before: tuple[Any, ...] | None = None

    @property
    def beyond(self) -> tuple[Any, ...] | None:
        """The cursor on the side the page is not taken from: whether anything lies past it
        decides hasPreviousPage (forward) or hasNextPage (backward)."""
        return self.before if self.backward else self.after


@dataclass(frozen=True)
class SortField:
    """One sort key: a (dotted) document field, its direction and its value type."""

    name: str
    descending: bool
    type: ValueType


@dataclass(frozen=True)
class Ordering:
    """A listing's order; `kind` names it in cursors so another listing's are refused."""

    kind: str
    fields: tuple[SortField, ...]

    def sort(self) -> list[tuple[str, int]]:
        """The MongoDB sort specification."""
        return [(f.name, DESCENDING if f.descending else ASCENDING) for f in self.fields]

    def reversed(self) -> Ordering:
        """The same listing read from its end: every key's direction flipped."""
        flipped = tuple(SortField(f.name, not f.descending, f.type) for f in self.fields)
        return Ordering(self.kind, flipped)

    def after(self, values: tuple[Any, ...], *, inclusive: bool = False) -> dict[str, Any]:
        """The filter for documents strictly after the sort-key `values` in this order
        (`inclusive`: or at them).

        (a, b) after (x, y) is `a > x OR (a = x AND b > y)` (< for descending keys). The
        first key also gets a plain range bound, which the query planner turns into an
        index bound instead of planning each `$or` branch apart.
        """
        first = self.fields[0]
        branches: list[dict[str, Any]] = []
        for index, sort_field in enumerate(self.fields):
            branch: dict[str, Any] = {f.name: values[i] for i, f in enumerate(self.fields[:index])}
            branch[sort_field.name] = {_strictly(sort_field): values[index]}
            branches.append(branch)
        if inclusive:
            branches.append({f.name: values[i] for i, f in enumerate(self.fields)})
        bound = "$lte" if first.descending else "$gte"
        return {first.name: {bound: values[0]}, "$or": branches}


def _strictly(sort_field: SortField) -> str:
    return "$lt" if sort_field.descending else "$gt"


def check_page_size(first: int, name: str = "first") -> None:
    """Refuse a page size outside 1..MAX_PAGE (never truncate silently)."""
    if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= MAX_PAGE:
        raise PageSizeError(f"{name} must be between 1 and {MAX_PAGE}, got {first!r}")


def page_request(
    ordering: Ordering,
    *,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> PageRequest:
    """The checked request for a page of `ordering`: PageSizeError for a bad size or for
    both (or neither) of `first` and `last`; BadCursor for a cursor this listing did not issue.
    """
    if first is not None and last is not None:
        raise PageSizeError("pass first (to page forward) or last (to page backward), not both")
    if first is None and last is None:
        raise PageSizeError("pass first (to page forward) or last (to page backward)")
    size = last if first is None else first
    assert size is not None
    check_page_size(size, "first" if first is not None else "last")
    return PageRequest(
        size=size,
        backward=last is not None,
        after=None if after is None else decode_cursor(after, ordering),
        before=None if before is None else decode_cursor(before, ordering),
    )


def canonical_id(raw: object) -> str | None:
    """A UUID string in canonical lowercase form; None when `raw` is not a UUID."""
    if not isinstance(raw, str):
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def cursor_for(doc: Mapping[str, Any], sort_fields: Ordering) -> str:
    """The opaque cursor pointing at `doc` in the listing ordered by `sort_fields`."""
    values = [_encode_value(_field(doc, f.name), f) for f in sort_fields.fields]
    raw = json.dumps({"k": sort_fields.kind, "v": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, expected_kind: Ordering) -> tuple[Any, ...]:
    """The sort-key values a cursor of the `expected_kind` listing names; BadCursor otherwise."""
    if (
        not isinstance(cursor, str)
        or len(cursor) > _MAX_CURSOR_LENGTH
        or not _URLSAFE.fullmatch(cursor)
    ):
        raise BadCursor(_MALFORMED)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError) as error:
        raise BadCursor(_MALFORMED) from error
    if not isinstance(payload, dict) or set(payload) != {"k", "v"}:
        raise BadCursor(_MALFORMED)
    if payload["k"] != expected_kind.kind:
        raise BadCursor(
            f"the cursor belongs to another listing ({payload['k']!r}), "
            f"not to this one ({expected_kind.kind!r})"
        )
    values = payload["v"]
    if not isinstance(values, list) or len(values) != len(expected_kind.fields):
        raise BadCursor(_MALFORMED)
    return tuple(_decode_value(v, f) for v, f in zip(values, expected_kind.fields, strict=True))


async def keyset_page(
    collection: AsyncCollection[Any],
    where: Mapping[str, Any],
    ordering: Ordering,
    request: PageRequest,
) -> Page[dict[str, Any]]:
    """The page `request` asks of the documents matching `where`, in `ordering`.

    One query for size + 1 documents, walking the listing's index forward or (for `last`)
    in reverse: the extra one only tells whether more lie that way. A page bounded by the
    other side's cursor asks one more indexed question: does anything lie past it?
    """
    scan = ordering.reversed() if request.backward else ordering
    found: list[dict[str, Any]] = (
        await collection.find(windowed(where, ordering, request))
        .sort(scan.sort())
        .limit(request.size + 1)
        .to_list()
    )
    beyond = False
    if request.beyond is not None:
        # Past `after` is before it; past `before` is after it: the cursor's own
        # document counts, since the client has seen it.
        past = (ordering if request.backward else ordering.reversed()).after(
            request.beyond, inclusive=True
        )
        probe = await collection.find(_and(where, [past])).sort(scan.sort()).limit(1).to_list()
        beyond = bool(probe)
    return page_of(found, ordering, request.size, backward=request.backward, beyond=beyond)


def windowed(where: Mapping[str, Any], ordering: Ordering, request: PageRequest) -> dict[str, Any]:
    """`where`, narrowed to the documents strictly between the request's cursors."""
    bounds: list[dict[str, Any]] = []
    if request.after is not None:
        bounds.append(ordering.after(request.after))
    if request.before is not None:
        bounds.append(ordering.reversed().after(request.before))
    return _and(where, bounds)


def _and(where: Mapping[str, Any], bounds: list[dict[str, Any]]) -> dict[str, Any]:
    query = dict(where)
    for bound in bounds:
        query = {"$and": [query, bound]} if query.keys() & bound.keys() else query | bound
    return query


def page_of(
    found: list[T], ordering: Ordering, size: int, *, backward: bool = False, beyond: bool = False
) -> Page[T]:
    """The page made of up to size + 1 documents fetched in scan order (the listing's order,
    or its reverse when `backward`); `beyond`: something lies past the other side's cursor.
    """
    more = len(found) > size
    items = found[:size]
    if backward:
        items.reverse()
    return listing_page(
        items,
        ordering,
        has_next=beyond if backward else more,
        has_previous=more if backward else beyond,
    )


def listing_page(
    items: list[T], ordering: Ordering, *, has_next: bool, has_previous: bool
) -> Page[T]:
    """The page of `items` (already in the listing's order) with their cursors."""
    cursors = [cursor_for(_as_mapping(item), ordering) for item in items]
    return Page(items, has_next, cursors[-1] if cursors else None, cursors, has_previous)


def empty_page() -> Page[Any]:
    """A page with nothing on it (e.g. for an id that names nothing)."""
    return Page([], False, None, [])


def _as_mapping(item: object) -> Mapping[str, Any]:
    assert isinstance(item, Mapping)
    return item


def _field(doc: Mapping[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        value = value[part]
    return value


def _encode_value(value: Any, sort_field: SortField) -> Any:
    if sort_field.type == "datetime":
        if not isinstance(value, datetime):
            raise TypeError(f"{sort_field.name} is not a datetime: {value!r}")
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return {"$date": (moment - _EPOCH) // _MILLISECOND}
    return value


def _storable(text: str) -> bool:
    """Whether both stores can take `text`: UTF-8 (no lone surrogates), and no NUL, which
    PostgreSQL's text type cannot hold."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _decode_value(value: Any, sort_field: SortField) -> Any:
    kind = sort_field.type
    if kind == "datetime":
        if isinstance(value, dict) and set(value) == {"$date"}:
            millis = value["$date"]
            if isinstance(millis, int) and not isinstance(millis, bool):
                try:
                    return _EPOCH + millis * _MILLISECOND
                except OverflowError:
                    pass
    elif kind == "int":
        # Sort keys of this type are counts the write store keeps in 32-bit INTEGER
        # columns, where the fallback compares them: a wider value could not be bound.
        if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
            return value
    elif kind == "id":
        if isinstance(value, str) and canonical_id(value) == value:
            return value
    elif isinstance(value, str) and _storable(value):
        return value
    raise BadCursor(f"the cursor's {sort_field.name} value is malformed: {value!r}")
