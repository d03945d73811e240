"""The plain-data shortcut (schema/execution.py) answers exactly as graphql-core does.

Each query runs on two schemas built from the same types, one executing with the
shortcut and one without; data and errors (messages, paths) must be equal. The types
cover what the shortcut handles (scalars, enums, custom scalars, nested objects, lists,
aliases, fragments, directives, __typename) and what must make it step aside (nulls in
non-null positions, refused scalars, resolvers, arguments, interfaces, unions).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator
from enum import Enum
from functools import partial
from typing import Annotated, Any

import pytest
import strawberry
from strawberry.extensions import MaxTokensLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionResult

from schema.build import _hooks_fields, build_schema
from schema.execution import PlainDataExecutionContext
from schema.extensions import ErrorCodes
from schema.scalars import SCALAR_MAP, Cents


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Line(Named):
    quantity: int
    price: Cents
    colour: Colour
    note: str | None


@strawberry.type
class Other(Named):
    size: int


@strawberry.type
class Basket:
    id: strawberry.ID
    lines: list[Line]
    maybe_lines: list[Line | None] | None
    tags: list[str]
    owner: Line | None
    # Wrongly None where the schema promises a value: an error either way.
    broken: str
    anything: Named
    either: Annotated[Line | Other, strawberry.union("LineOrOther")]

    @strawberry.field
    def doubled(self, times: int = 2) -> list[int]:
        return [line.quantity * times for line in self.lines]


def line(n: int, **changes: Any) -> Line:
    fields: dict[str, Any] = {
        "name": f"item {n}",
        "quantity": n,
        "price": Cents(100 * n),
        "colour": Colour.RED if n % 2 else Colour.BLUE,
        "note": None if n % 3 else f"note {n}",
    }
    return Line(**(fields | changes))


def basket(**changes: Any) -> Basket:
    fields: dict[str, Any] = {
        "id": strawberry.ID("b1"),
        "lines": [line(n) for n in range(1, 6)],
        "maybe_lines": [line(1), None, line(2)],
        "tags": ["a", "b"],
        "owner": None,
        "broken": "fine",
        "anything": Other(name="other", size=3),
        "either": line(7),
    }
    return Basket(**(fields | changes))


CASES: dict[str, Basket] = {
    "good": basket(),
    "null_in_non_null": basket(broken=None),
    "null_line_in_non_null_list": basket(lines=[line(1), None]),
    "refused_scalar": basket(lines=[line(1, price=Cents(-5))]),
    "refused_nested_scalar": basket(owner=line(1, price=Cents(-1))),
    "wrong_enum": basket(lines=[line(1, colour="purple")]),
}


@strawberry.type
class Query:
    @strawberry.field
    def basket(self, case: str) -> Basket:
        return CASES[case]

    @strawberry.field
    def baskets(self) -> list[Basket]:
        return [CASES["good"], CASES["good"]]


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    config = StrawberryConfig(scalar_map=SCALAR_MAP)
    shortcut = strawberry.Schema(
        query=Query, config=config, execution_context_class=PlainDataExecutionContext
    )
    standard = strawberry.Schema(query=Query, config=config)
    return shortcut, standard


SELECTION = """
    __typename id tags
    lines { __typename name quantity price colour note }
    maybeLines { name quantity }
    owner { name price }
    broken
"""
QUERIES = [f'{{ basket(case: "{case}") {{ {SELECTION} }} }}' for case in CASES] + [
    # Aliases, the same field twice, named and inline fragments.
    """{ basket(case: "good") { first: lines { q: quantity } lines { name }
         ... on Basket { tags } ...More } }
       fragment More on Basket { lines { price colour } owner { __typename } }""",
    # Directives, with a variable and literals.
    """query($skip: Boolean!) { basket(case: "good") {
         lines { name @skip(if: $skip) quantity @include(if: false) price @include(if: true) } } }""",
    # A resolver with arguments beside plain fields, interfaces and unions.
    """{ basket(case: "good") { doubled(times: 3) lines { quantity }
         anything { name ... on Other { size } ... on Line { quantity } }
         either { __typename ... on Line { name colour } ... on Other { size } } } }""",
    # A list of objects with plain lists inside.
    "{ baskets { id tags lines { name } } }",
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_shortcut_answers_as_graphql_core_does(query: str) -> None:
    shortcut, standard = schemas()
    variables = {"skip": True}

    fast = shortcut.execute_sync(query, variable_values=variables)
    slow = standard.execute_sync(query, variable_values=variables)

    assert fast.data == slow.data
    assert [(e.message, e.path) for e in fast.errors or []] == [
        (e.message, e.path) for e in slow.errors or []
    ]


def test_errors_surface_where_graphql_core_puts_them() -> None:
    """The cases that make the shortcut step aside still give errors (not silent nulls)."""
    shortcut, _ = schemas()
    for case in CASES.keys() - {"good"}:
        result = shortcut.execute_sync(f'{{ basket(case: "{case}") {{ {SELECTION} }} }}')
        assert result.errors, case


def test_plain_fields_skip_the_per_field_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only fields with resolvers build resolve info; the plain ones are read directly."""
    built: list[str] = []
    original = PlainDataExecutionContext.build_resolve_info

    def counting(self: PlainDataExecutionContext, field_def: Any, *args: Any) -> Any:
        built.append(field_def.type)
        return original(self, field_def, *args)

    monkeypatch.setattr(PlainDataExecutionContext, "build_resolve_info", counting)
    shortcut, _ = schemas()

    result = shortcut.execute_sync('{ basket(case: "good") { id lines { name price colour } } }')

    assert result.errors is None
    assert len(built) == 1  # the root field `basket` alone


def test_the_api_schema_runs_with_the_shortcut() -> None:
    assert build_schema().execution_context_class is PlainDataExecutionContext
    assert build_schema(plain_data_shortcut=False).execution_context_class is not (
        PlainDataExecutionContext
    )


class FieldHook(SchemaExtension):
    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        return _next(root, info, *args, **kwargs)


def test_extensions_with_field_hooks_are_recognised() -> None:
    """build_schema refuses the shortcut with these: it would skip their hook."""
    assert _hooks_fields(FieldHook)
    assert _hooks_fields(partial(FieldHook))
    assert not _hooks_fields(ErrorCodes)
    assert not _hooks_fields(partial(MaxTokensLimiter, max_token_count=10))


@strawberry.type
class Ticks:
    @strawberry.subscription
    async def ticks(self, count: int) -> AsyncGenerator[Line, None]:
        for n in range(count):
            yield line(n + 1)


def collected_fields_alive() -> int:
    gc.collect()
    return sum(type(o).__name__ == "CollectedFields" for o in gc.get_objects())


async def test_a_long_subscription_does_not_keep_each_events_fields() -> None:
    """graphql-core's per-event executors shared one memo that grew with every event."""
    schema = strawberry.Schema(
        query=Query,
        subscription=Ticks,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=PlainDataExecutionContext,
    )
    stream = await schema.subscribe("subscription { ticks(count: 2000) { name owner: name } }")
    assert not isinstance(stream, ExecutionResult)
    alive: dict[int, int] = {}
    async for result in stream:
        assert result.errors is None
        alive[len(alive) + 1] = collected_fields_alive() if len(alive) + 1 in (100, 2000) else 0
    # Counted while the subscription is still open: what its executor holds on to.
    assert len(alive) == 2000
    assert alive[2000] <= alive[100] + 10, (alive[100], alive[2000])
