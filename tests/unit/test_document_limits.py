"""The document measures of schema/limits: linear in the text, exact about the expansion."""

from __future__ import annotations

import pytest
from graphql import OperationDefinitionNode, parse

from app.asgi import query_limits
from app.settings import Settings
from schema.build import build_schema
from schema.limits import Budgets, QueryLimits
from schema.limits.document import FragmentCycle, Shape, measure_document, repeated_field_pairs


def doubling(levels: int) -> str:
    """`{ ...G0 }` where each fragment spreads the next twice: 2^levels fields as executed."""
    fragments = " ".join(
        f"fragment G{n} on Query {{ ...G{n + 1} ...G{n + 1} }}" for n in range(levels)
    )
    return f"{{ ...G0 }} {fragments} fragment G{levels} on Query {{ apiVersion }}"


def only_operation(text: str) -> OperationDefinitionNode:
    (operation,) = [d for d in parse(text).definitions if isinstance(d, OperationDefinitionNode)]
    return operation


@pytest.mark.parametrize("levels", [10, 20, 40, 200])
def test_the_doubling_family_is_measured_exactly_by_visiting_each_node_once(
    levels: int,
) -> None:
    document = parse(doubling(levels), max_tokens=None)

    shapes = measure_document(document)

    assert shapes.operations[None].fields == 2**levels
    assert shapes.operations[None].spreads == 2 ** (levels + 1) - 1
    # Each fragment's two spreads are visited twice (dependencies, then summary), the
    # last fragment's field twice, the operation's spread once: 4n + 3, not 2^n.
    assert shapes.visited == 4 * levels + 3


def test_measuring_work_grows_linearly_with_the_document_not_its_expansion() -> None:
    visited = {
        n: measure_document(parse(doubling(n), max_tokens=None)).visited for n in (10, 20, 40, 200)
    }

    per_level = {(visited[b] - visited[a]) / (b - a) for a, b in [(10, 20), (20, 40), (40, 200)]}

    assert per_level == {4.0}


def test_depth_aliases_and_directives_count_through_fragments_as_executed() -> None:
    text = """
    query Q @skip(if: false) { a: order(id: "1") { ...O } b: order(id: "2") { ...O } }
    fragment O on Order @include(if: true) { customer { id } lines { x: sku } }
    """
    shape = measure_document(parse(text)).operations["Q"]

    # order > customer > id: two composite fields on the longest path
    assert shape == Shape(depth=2, fields=10, aliases=4, directives=3, spreads=2)


def test_introspection_nesting_is_left_to_graphql_cores_own_rule() -> None:
    text = "{ __schema { types { fields { type { ofType { name } } } } } }"
    assert measure_document(parse(text)).operations[None].depth == 0


def test_a_fragment_cycle_is_refused_without_following_it() -> None:
    text = "{ ...A } fragment A on Query { ...B } fragment B on Query { apiVersion ...A }"
    with pytest.raises(FragmentCycle) as cycle:
        measure_document(parse(text))
    assert "within itself" in str(cycle.value)


def test_a_long_chain_of_fragments_does_not_exhaust_the_stack() -> None:
    chain = " ".join(f"fragment F{n} on Query {{ ...F{n + 1} }}" for n in range(3000))
    text = f"{{ ...F0 }} {chain} fragment F3000 on Query {{ apiVersion }}"

    shape = measure_document(parse(text, max_tokens=None)).operations[None]

    assert (shape.fields, shape.spreads) == (1, 3001)


def test_repeated_fields_count_the_pairs_graphql_core_compares() -> None:
    three = "{ me { id } me { id } me { id } }"
    # three pairs of `me`, and three of the `id`s merged below them
    assert repeated_field_pairs(parse(three), only_operation(three)) == 6
    # A fragment spread twice at one place is compared once, as graphql-core does.
    text = "{ ...F ...F } fragment F on Query { apiVersion }"
    assert repeated_field_pairs(parse(text), only_operation(text)) == 0


def test_the_limits_defaults_are_the_settings_defaults() -> None:
    assert query_limits(Settings(_env_file=None)) == (QueryLimits(), Budgets())  # type: ignore[call-arg]


def test_a_document_over_a_limit_names_the_limit_and_what_was_measured() -> None:
    result = build_schema(limits=QueryLimits(max_aliases=2)).execute_sync(
        "{ a: apiVersion b: apiVersion c: apiVersion }"
    )

    assert result.errors is not None
    (error,) = result.errors
    assert error.extensions == {
        "code": "GRAPHQL_VALIDATION_FAILED",
        "limit": "aliases",
        "measured": 3,
        "maximum": 2,
    }


def test_an_accepted_operation_reports_its_cost_and_budget() -> None:
    result = build_schema().execute_sync("{ apiVersion }")

    assert result.errors is None
    assert result.extensions == {"cost": {"requested": 10, "budget": Budgets().anonymous}}


def test_several_operations_without_an_operation_name_are_refused() -> None:
    schema = build_schema()
    text = "query A { apiVersion } query B { __typename }"

    refused = schema.execute_sync(text)
    chosen = schema.execute_sync(text, operation_name="B")

    assert refused.errors is not None
    assert [e.message for e in refused.errors] == [
        "Must provide operation name if query contains multiple operations."
    ]
    assert refused.errors[0].extensions == {"code": "OPERATION_RESOLUTION_FAILURE"}
    assert chosen.errors is None
    assert chosen.data == {"__typename": "Query"}
