"""Accept negotiation and request-parameter checks of app/graphql_http, without a server
(tests/e2e/test_graphql_over_http.py holds them over HTTP)."""

from __future__ import annotations

import pytest

from app.graphql_http.negotiation import GRAPHQL_RESPONSE_JSON, JSON, negotiate
from app.graphql_http.refusals import Refused
from app.graphql_http.requests import (
    BatchPolicy,
    check_content_type,
    operation_from_query_string,
    operations_from_body,
)


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/*;q=0.8", JSON),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, {JSON};q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"{JSON}, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0.5, */*", JSON),
        (f"{JSON};q=0, */*;q=0.1", GRAPHQL_RESPONSE_JSON),
        ("text/html", None),
        (f"{JSON};q=0", None),
        ("application/json;q=nonsense", None),
    ],
)
def test_negotiation_picks_the_most_preferred_supported_type(
    accept: str | None, chosen: str | None
) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=UTF-8", 'application/json; charset="utf8"']
)  # fmt: skip
def test_json_in_utf_8_is_the_body_accepted(content_type: str) -> None:
    check_content_type(content_type)


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/json; charset=latin-1", "multipart/form-data"]
)  # fmt: skip
def test_any_other_body_is_refused_415(content_type: str | None) -> None:
    with pytest.raises(Refused) as refused:
        check_content_type(content_type)
    assert (refused.value.status_code, refused.value.code) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_missing_query_is_left_for_later_stages_to_supply_or_refuse() -> None:
    data = operations_from_body(b'{"extensions": {"persistedQuery": {}}}', "http", BatchPolicy())

    assert not isinstance(data, list)
    assert data.query is None
    assert data.extensions == {"persistedQuery": {}}


def test_empty_get_parameters_count_as_absent() -> None:
    data = operation_from_query_string(
        {"query": "{ __typename }", "variables": "", "operationName": "", "extensions": ""}, "http"
    )

    assert (data.query, data.variables, data.operation_name, data.extensions) == (
        "{ __typename }",
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[]", "BATCHING_DISABLED"),
        (b"{", "BAD_REQUEST"),
        (b'{"query": "{ a }", "operationName": 1}', "BAD_REQUEST"),
        (b'{"query": "{ a }", "variables": []}', "BAD_REQUEST"),
    ],
)
def test_malformed_bodies_are_refused_with_a_code(body: bytes, code: str) -> None:
    with pytest.raises(Refused) as refused:
        operations_from_body(body, "http", BatchPolicy())
    assert refused.value.code == code


def test_a_batch_is_bounded_and_never_streamed() -> None:
    policy = BatchPolicy(enabled=True, max_operations=2)
    two = b'[{"query": "{ a }"}, {"query": "{ b }"}]'
    three = b'[{"query": "{ a }"}, {"query": "{ b }"}, {"query": "{ c }"}]'

    answered = operations_from_body(two, "http", policy)
    assert isinstance(answered, list)
    assert [data.query for data in answered] == ["{ a }", "{ b }"]
    with pytest.raises(Refused, match="at most 2"):
        operations_from_body(three, "http", policy)
    with pytest.raises(Refused, match="streamed"):
        operations_from_body(b'[{"query": "{ a }"}]', "sse", policy)
