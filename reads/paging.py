"""Keyset pagination over read-model documents: orderings, opaque cursors and pages.

A listing sorts on indexed fields with `_id` last as the tiebreaker, so every document
has a unique position in it. A cursor names the listing's ordering and the sort-key
values of the document it points at; the next page is the documents strictly after
those values. Documents inserted between two pages therefore land before or after the
cursor, never shifting what is left, so a walk sees no duplicates and skips nothing.
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
_MALFORMED = "the cursor is malformed: pass an endCursor or edge cursor exactly as returned"


class BadCursor(ValueError):
    """A cursor this listing did not issue: malformed, tampered with, or another listing's."""


class PageSizeError(ValueError):
    """A page size outside 1..MAX_PAGE."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; `cursors[i]` points at `items[i]` (a Relay edge's cursor)."""

    items: list[T]
    has_next: bool
    end_cursor: str | None
    cursors: list[str] = field(default_factory=list)


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

    def after(self, values: tuple[Any, ...]) -> dict[str, Any]:
        """The filter for documents strictly after the sort-key `values` in this order.

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
        bound = "$lte" if first.descending else "$gte"
        return {first.name: {bound: values[0]}, "$or": branches}


def _strictly(sort_field: SortField) -> str:
    return "$lt" if sort_field.descending else "$gt"


def check_page_size(first: int) -> None:
    """Refuse a page size outside 1..MAX_PAGE (never truncate silently)."""
    if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= MAX_PAGE:
        raise PageSizeError(f"first must be between 1 and {MAX_PAGE}, got {first!r}")


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
    *,
    first: int,
    after: str | None,
) -> Page[dict[str, Any]]:
    """The `first` documents matching `where` after the cursor `after`, in `ordering`.

    One query for first + 1 documents: the extra one only tells whether a next page exists.
    """
    check_page_size(first)
    query = dict(where)
    if after is not None:
        keyset = ordering.after(decode_cursor(after, ordering))
        query = {"$and": [query, keyset]} if query.keys() & keyset.keys() else query | keyset
    found: list[dict[str, Any]] = (
        await collection.find(query).sort(ordering.sort()).limit(first + 1).to_list()
    )
    return page_of(found, ordering, first)


def page_of(found: list[T], ordering: Ordering, first: int) -> Page[T]:
    """The page made of up to first + 1 documents fetched in `ordering`."""
    items = found[:first]
    cursors = [cursor_for(_as_mapping(item), ordering) for item in items]
    return Page(items, len(found) > first, cursors[-1] if cursors else None, cursors)


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
