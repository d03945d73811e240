"""A repeated query is validated once per schema, limits included.

strawberry's ValidationCache keyed on the rule classes, and rules made per request (as
its QueryDepthLimiter and MaxAliasesLimiter make them) turned every request into a miss;
DocumentLimits now caches per query text, and a document over a limit is refused
before graphql-core's validation ever sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import graphql
import pytest
import strawberry.schema.schema as strawberry_schema

from schema.build import build_schema
from schema.limits import QueryLimits

QUERY = "{ __schema { queryType { name } } }"
TOO_DEEP = '{ order(id: "1") { customer { id } } }'


def counting(calls: list[int]) -> Callable[..., Any]:
    """graphql-core's validate, counting its calls."""
    real = graphql.validate

    def validate(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    return validate


def test_a_repeated_query_is_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = build_schema(limits=QueryLimits(max_depth=1))
    calls: list[int] = []
    monkeypatch.setattr(strawberry_schema, "validate", counting(calls))

    for _ in range(5):
        assert schema.execute_sync(QUERY).errors is None
    assert len(calls) == 1
    # The limits still hold, and a refused query is refused every time.
    for _ in range(3):
        errors = schema.execute_sync(TOO_DEEP).errors
        assert errors
        assert errors[0].extensions is not None
        assert errors[0].extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert errors[0].extensions["limit"] == "depth"
    assert len(calls) == 1
