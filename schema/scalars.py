"""Custom scalars. Cents is money in minor units: a JSON integer, never negative."""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import IntValueNode, ValueNode

Cents = NewType("Cents", int)

# JSON numbers are doubles in most clients: integers above 2^53 lose precision.
MAX_SAFE_INTEGER = 2**53 - 1


def _checked(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Cents must be an integer number of cents, got {value!r}")
    if not 0 <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"Cents must be between 0 and {MAX_SAFE_INTEGER}, got {value}")
    return value


def _parse_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> int:
    if not isinstance(node, IntValueNode):
        raise ValueError("Cents must be an integer literal")
    return _checked(int(node.value))


CENTS = strawberry.scalar(
    name="Cents",
    description="Money in minor units (cents): a non-negative JSON integer, exact up to 2^53.",
    serialize=_checked,
    parse_value=_checked,
    parse_literal=_parse_literal,
)

SCALAR_MAP: dict[object, Any] = {Cents: CENTS}
