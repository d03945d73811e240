"""What operations cost (schema/limits/costs.py, decision 0021), before anything runs."""

from __future__ import annotations

from typing import Any

import graphql
import pytest
import strawberry.schema.schema as strawberry_schema
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    OperationDefinitionNode,
    parse,
)

from schema.build import build_schema
from schema.limits import Budgets
from schema.limits.costs import COSTS, operation_cost
from schema.limits.document import measure_document

SCHEMA = build_schema()
ORDER_LINES = "lines { sku }"
# The request: one page of 100 orders with their lines.
FULL_PAGE = f"myOrders(first: 100) {{ edges {{ node {{ {ORDER_LINES} }} }} }}"


def cost(text: str, variables: dict[str, Any] | None = None) -> int:
    document = parse(text)
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    order = measure_document(document).fragment_order
    return operation_cost(SCHEMA._schema, document, operation, variables or {}, order)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{ apiVersion __typename }", 10),
        ('{ product(id: "1") { id sku name } }', 10 + 1),
        # one read, the order object, its customer, 50 lines at most
        (f'{{ order(id: "1") {{ id customer {{ id }} {ORDER_LINES} }} }}', 10 + 1 + 1 + 50),
        # a page of 20 by default: each item an edge and a node
        ("{ products { edges { node { id } } } }", 10 + 20 * 2),
        ("{ products(first: 5) { edges { cursor node { id } } pageInfo { hasNextPage } } }", 10 + 1 + 5 * 2),
        (f"{{ {FULL_PAGE} }}", 10 + 100 * (1 + 1 + 50)),
        ("{ salesDashboard { daily(days: 366) { date } topProducts { name } } }", 10 + 1 + (10 + 366) + (10 + 10)),
        ("{ projections { name } }", 10 + 10),
        ('mutation { logIn(input: {email: "a@b.c", password: "p"}) { __typename } }', 1000 + 1),
        ("subscription { myOrdersUpdated { id } }", 10 + 1),
    ],
)  # fmt: skip
def test_each_field_costs_its_work_and_lists_multiply_by_their_size(
    text: str, expected: int
) -> None:
    assert cost(text) == expected


def test_page_sizes_come_from_the_requests_variables() -> None:
    text = "query($n: Int) { products(first: $n) { edges { node { id } } } }"

    assert cost(text, {"n": 50}) == 10 + 50 * 2
    assert cost(text, {}) == 10 + 20 * 2  # the argument's default
    assert cost(text, {"n": 10_000}) == 10 + 100 * 2  # the resolver refuses past 100
    assert cost(text, {"n": "many"}) == 10 + 20 * 2  # refused as BAD_USER_INPUT anyway


def test_fragments_and_aliases_cost_what_they_execute() -> None:
    text = f"{{ a: {FULL_PAGE} b: myOrders(first: 100) {{ ...Page }} }} fragment Page on OrderConnection {{ edges {{ node {{ {ORDER_LINES} }} }} }}"

    assert cost(text) == 2 * (10 + 100 * 52)


def test_every_list_field_of_the_schema_has_a_stated_size() -> None:
    """A new list field must get an entry in COSTS: else it is priced as 100 items."""
    unsized = []
    for type_ in SCHEMA._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            field_type = field.type
            if isinstance(field_type, GraphQLNonNull):
                field_type = field_type.of_type
            if isinstance(field_type, GraphQLList) and f"{type_.name}.{name}" not in COSTS:
                unsized.append(f"{type_.name}.{name}")
    assert unsized == []


def test_every_cost_entry_names_a_real_field() -> None:
    type_map = SCHEMA._schema.type_map
    for key in COSTS:
        type_name, field_name = key.split(".")
        type_ = type_map[type_name]
        assert isinstance(type_, GraphQLObjectType)
        assert field_name in type_.fields, key


def test_the_budget_is_checked_before_graphql_core_validates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refusal for cost must be cheap: validation would walk the whole document first."""
    validated: list[object] = []
    real = graphql.validate

    def validate(*args: Any, **kwargs: Any) -> Any:
        validated.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate", validate)
    schema = build_schema(budgets=Budgets(anonymous=100))

    refused = schema.execute_sync("{ products(first: 50) { edges { node { id nope } } } }")
    invalid = schema.execute_sync("{ products(first: 5) { edges { node { id nope } } } }")

    assert refused.errors is not None
    assert [e.extensions["code"] for e in refused.errors if e.extensions] == ["QUERY_TOO_COMPLEX"]
    assert invalid.errors is not None
    assert [e.extensions for e in invalid.errors] == [{"code": "GRAPHQL_VALIDATION_FAILED"}]
    assert invalid.extensions == {}  # nothing ran: no cost to report
    assert len(validated) == 1


def test_an_operation_over_the_budget_is_refused_with_its_cost() -> None:
    schema = build_schema(budgets=Budgets(anonymous=100))

    result = schema.execute_sync("{ products(first: 50) { edges { node { id } } } }")

    assert result.errors is not None
    (error,) = result.errors
    assert error.extensions == {"code": "QUERY_TOO_COMPLEX", "cost": 110, "budget": 100}
    assert result.data is None


def test_last_prices_a_page_like_first_and_a_total_count_is_one_more_read() -> None:
    page = "edges { node { id } } pageInfo { hasPreviousPage startCursor }"
    by_first = cost(f"{{ myOrders(first: 100) {{ {page} }} }}")

    assert cost(f"{{ myOrders(last: 100) {{ {page} }} }}") == by_first == 10 + 1 + 100 * 2
    # `last` with the contract's default `first` (20) costs what `last` asks for.
    assert cost(f'{{ products(last: 50, before: "x") {{ {page} }} }}') == 10 + 1 + 50 * 2
    text = f"query($n: Int) {{ inventory(last: $n) {{ {page} }} }}"
    assert cost(text, {"n": 90}) == 10 + 1 + 90 * 2
    assert cost(text, {"n": 10_000}) == 10 + 1 + 100 * 2
    assert cost("{ products(first: 5) { totalCount } }") == 10 + 10
    assert cost("{ myOrders(last: 5) { totalCount edges { cursor } } }") == 10 + 10 + 5
