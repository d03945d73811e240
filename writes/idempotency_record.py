"""The first result of a keyed placeOrder as its idempotency key stores it (JSONB).

The JSON is generated from OrderView itself (pydantic's TypeAdapter over the dataclass),
so a field added to the view is stored and replayed with no codec to keep in step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import TypeAdapter

from writes.views import OrderLineView, OrderView

_ORDER = TypeAdapter(OrderView)
_LINE_FIELDS = tuple(field.name for field in dataclasses.fields(OrderLineView))


def stored_order(view: OrderView) -> dict[str, Any]:
    """The record of `view`: the view's fields as JSON values (UUIDs and times as strings)."""
    record: dict[str, Any] = _ORDER.dump_python(view, mode="json")
    return record


def replayed_order(record: dict[str, Any]) -> OrderView:
    """The view a record holds, whether `stored_order` wrote it or the codec before it.

    Records written before decision 0065 hold each line as a list of the line's fields in
    declaration order; they are read by naming those values, so keys stored then still
    replay.
    """
    lines = [
        dict(zip(_LINE_FIELDS, line, strict=True)) if isinstance(line, list) else line
        for line in record["lines"]
    ]
    return _ORDER.validate_python({**record, "lines": lines})
