"""GraphQL over HTTP (graphql.github.io/graphql-over-http), over real HTTP: every refusal a
coded JSON body, the status codes of each response media type, cache headers on GET, and
batches off by default, bounded and budgeted when on (decisions 0041-0043)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio

from app.asgi import create_app
from tests.conftest import PASSWORD, Api, sign_up
from tests.support import LOG_IN, SIGN_UP, GraphQLClient, free_port, serving, unique

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
BOTH = (GRAPHQL_RESPONSE, JSON)
TYPENAME = "{ __typename }"
ME = "{ me { id } }"
# Over the anonymous budget (1500) and the customer's: 100 orders of up to 50 lines each.
ORDER_PAGE = "{ myOrders(first: 100) { edges { node { lines { sku } } } } }"
PRODUCT_PAGE = "{ products(first: 100) { edges { node { id name } } } }"
BATCH_MAX = 30
# Twelve levels of selections, over the limit of ten.
TOO_DEEP = '{ __type(name: "Query") ' + "{ fields { type " * 6 + "{ name }" + " } }" * 6 + " }"


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"]


async def post(api: Api, body: object, accept: str = JSON, **headers: str) -> httpx.Response:
    return await api.client.http.post(
        "/graphql",
        content=json.dumps(body),
        headers={"content-type": JSON, "accept": accept, **headers},
    )


async def get(
    api: Api, accept: str = JSON, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return await api.client.http.get(
        "/graphql", params=params, headers={"accept": accept, **(headers or {})}
    )


# --- every refusal is JSON with a code --------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    name: str
    request: dict[str, Any]  # keyword arguments for httpx's request(), Accept added
    status: int
    code: str
    headers: dict[str, str] = field(default_factory=dict)  # response headers it must carry

    def __str__(self) -> str:
        return self.name


def posted(content: bytes | str, content_type: str | None = JSON) -> dict[str, Any]:
    headers = {} if content_type is None else {"content-type": content_type}
    return {"method": "POST", "content": content, "headers": headers}


REFUSALS = [
    # PUT and DELETE belong to graphql-sse's single connection mode (tests/e2e/test_sse_*).
    Refusal("a PATCH", {"method": "PATCH", "content": b"{}"}, 405, "METHOD_NOT_ALLOWED", {"allow": "GET, POST, PUT, DELETE"}),
    Refusal("no Content-Type", posted(json.dumps({"query": TYPENAME}), None), 415, "UNSUPPORTED_MEDIA_TYPE"),
    Refusal("text/plain", posted(json.dumps({"query": TYPENAME}), "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    Refusal("JSON in Latin-1", posted(json.dumps({"query": TYPENAME}), "application/json; charset=latin-1"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    Refusal("form data", posted("query=%7B__typename%7D", "application/x-www-form-urlencoded"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    Refusal("an empty body", posted(b""), 400, "BAD_REQUEST"),
    Refusal("unparseable JSON", posted('{ "not a JSON'), 400, "BAD_REQUEST"),
    Refusal("a JSON number", posted("7"), 400, "BAD_REQUEST"),
    Refusal("no query", posted(json.dumps({"qeury": TYPENAME})), 400, "BAD_REQUEST"),
    Refusal("a query that is an object", posted(json.dumps({"query": {"obj": "ect"}})), 400, "BAD_REQUEST"),
    Refusal("operationName not a string", posted(json.dumps({"query": TYPENAME, "operationName": 0})), 400, "BAD_REQUEST"),
    Refusal("variables not an object", posted(json.dumps({"query": TYPENAME, "variables": "x"})), 400, "BAD_REQUEST"),
    Refusal("extensions not an object", posted(json.dumps({"query": TYPENAME, "extensions": ["a"]})), 400, "BAD_REQUEST"),
    Refusal("a batch, batching being off", posted(json.dumps([{"query": TYPENAME}])), 400, "BATCHING_DISABLED"),
    Refusal("a GET without a query", {"method": "GET"}, 400, "BAD_REQUEST"),
    Refusal("GET variables that are not JSON", {"method": "GET", "params": {"query": TYPENAME, "variables": "{"}}, 400, "BAD_REQUEST"),
    Refusal("a mutation over GET", {"method": "GET", "params": {"query": "mutation { __typename }"}}, 405, "METHOD_NOT_ALLOWED", {"allow": "POST"}),
    Refusal("a body over the limit", posted(json.dumps({"query": TYPENAME, "pad": "x" * 200_000})), 413, "PAYLOAD_TOO_LARGE"),
]  # fmt: skip


@pytest.mark.parametrize("accept", BOTH)
@pytest.mark.parametrize("case", REFUSALS, ids=str)
async def test_a_refused_request_gets_a_coded_json_error_in_the_media_type_asked_for(
    api: Api, case: Refusal, accept: str
) -> None:
    request = {**case.request, "headers": {**case.request.get("headers", {}), "accept": accept}}

    response = await api.client.http.request(url="/graphql", **request)

    assert response.status_code == case.status, response.text
    assert media_type(response) == f"{accept}; charset=utf-8"
    body = response.json()
    assert "data" not in body, body
    assert codes(response) == [case.code]
    assert body["errors"][0]["message"], body
    assert response.headers["cache-control"] == "no-store"
    for name, value in case.headers.items():
        assert response.headers[name] == value


async def test_a_missing_query_says_what_to_send(api: Api) -> None:
    response = await post(api, {"variables": {}})

    assert response.json()["errors"][0]["message"].startswith("No GraphQL query found")


async def test_an_accept_header_allowing_neither_json_type_is_refused_406(api: Api) -> None:
    response = await post(api, {"query": TYPENAME}, accept="text/html, image/png")

    assert response.status_code == 406
    assert media_type(response) == "application/json; charset=utf-8"
    assert codes(response) == ["NOT_ACCEPTABLE"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("*/*", JSON),
        ("application/*", JSON),
        ("", JSON),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
        (f"{JSON};q=0, */*;q=0.1", GRAPHQL_RESPONSE),
    ],
)
async def test_the_response_media_type_follows_the_accept_header(
    api: Api, accept: str, expected: str
) -> None:
    response = await post(api, {"query": TYPENAME}, accept=accept)

    assert response.status_code == 200
    assert media_type(response) == f"{expected}; charset=utf-8"
    assert response.json()["data"] == {"__typename": "Query"}


async def test_a_browser_still_gets_graphiqls_page(api: Api) -> None:
    response = await api.client.http.get(
        "/graphql", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


# --- status codes: graphql-response+json against the legacy application/json -------------


@dataclass(frozen=True)
class RequestError:
    """A request that fails before execution: 400 without data, or a legacy 200."""

    name: str
    body: dict[str, Any]
    code: str

    def __str__(self) -> str:
        return self.name


REQUEST_ERRORS = [
    RequestError("a document that does not parse", {"query": "{"}, "GRAPHQL_PARSE_FAILED"),
    RequestError("an unknown field", {"query": "{ noSuchField }"}, "GRAPHQL_VALIDATION_FAILED"),
    RequestError("a variable that does not coerce", {"query": "query($id: ID!) { product(id: $id) { id } }", "variables": {"id": None}}, "BAD_USER_INPUT"),
    RequestError("a document too deep", {"query": TOO_DEEP}, "GRAPHQL_VALIDATION_FAILED"),
    RequestError("an operation over the budget", {"query": ORDER_PAGE}, "QUERY_TOO_COMPLEX"),
    RequestError("an unknown operation name", {"query": "query A { __typename }", "operationName": "B"}, "OPERATION_RESOLUTION_FAILURE"),
    RequestError("two operations and no name", {"query": "query A { __typename } query B { __typename }"}, "OPERATION_RESOLUTION_FAILURE"),
]  # fmt: skip


@pytest.mark.parametrize("case", REQUEST_ERRORS, ids=str)
async def test_a_request_error_is_a_400_without_data_under_graphql_response_json(
    api: Api, case: RequestError
) -> None:
    response = await post(api, case.body, accept=GRAPHQL_RESPONSE)

    assert response.status_code == 400, response.text
    assert media_type(response) == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "data" not in response.json()
    assert case.code in codes(response), response.text


@pytest.mark.parametrize("case", REQUEST_ERRORS, ids=str)
async def test_a_request_error_is_a_200_under_application_json(
    api: Api, case: RequestError
) -> None:
    response = await post(api, case.body, accept=JSON)

    assert response.status_code == 200, response.text
    assert media_type(response) == f"{JSON}; charset=utf-8"
    assert response.json().get("data") is None
    assert case.code in codes(response), response.text


@pytest.mark.parametrize("accept", BOTH)
async def test_a_field_error_after_execution_started_is_a_200(api: Api, accept: str) -> None:
    response = await post(api, {"query": "{ myOrders { edges { cursor } } }"}, accept=accept)

    assert response.status_code == 200, response.text
    body = response.json()
    assert "data" in body, body
    assert body["data"] is None, body  # myOrders is non-null
    assert codes(response) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["path"] == ["myOrders"]


async def test_a_bad_token_refused_before_execution_is_a_401(api: Api) -> None:
    response = await post(
        api, {"query": ORDER_PAGE}, accept=GRAPHQL_RESPONSE, authorization="Bearer not.a.jwt"
    )

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert codes(response) == ["UNAUTHENTICATED"]


# --- GET and caching --------------------------------------------------------------------


async def test_an_anonymous_get_query_may_be_cached_and_varies_on_credentials(api: Api) -> None:
    response = await get(api, query=TYPENAME, variables="", operationName="")

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"__typename": "Query"}
    assert response.headers["cache-control"] == "public, max-age=0"
    vary = {part.strip().lower() for part in response.headers["vary"].split(",")}
    assert {"accept", "authorization", "x-consistency-token"} <= vary


async def test_a_get_query_with_credentials_or_a_consistency_token_is_never_stored(
    api: Api,
) -> None:
    customer = await sign_up(api)
    consistency_token = await consistency_token_of(api, customer.email)

    with_token = await get(api, headers={"authorization": f"Bearer {customer.token}"}, query=ME)
    with_consistency = await get(api, headers={"x-consistency-token": consistency_token}, query=ME)

    assert with_token.status_code == 200, with_token.text
    assert with_token.headers["cache-control"] == "no-store"
    assert with_consistency.status_code == 200, with_consistency.text
    assert with_consistency.headers["cache-control"] == "no-store"


async def consistency_token_of(api: Api, email: str) -> str:
    data = await api.client.data(LOG_IN, {"input": {"email": email, "password": PASSWORD}})
    token: str = data["logIn"]["consistencyToken"]
    return token


async def test_a_get_query_with_errors_and_every_post_are_never_stored(api: Api) -> None:
    failed = await get(api, query="{ myOrders { edges { cursor } } }")
    posted_ok = await post(api, {"query": TYPENAME})

    assert failed.headers["cache-control"] == "no-store"
    assert posted_ok.headers["cache-control"] == "no-store"


async def test_a_get_mutation_is_refused_and_runs_nothing(api: Api) -> None:
    email = f"{unique('get-mutation')}@example.com"
    variables = {"input": {"email": email, "name": "Gus Get", "password": PASSWORD}}

    response = await get(
        api, accept=GRAPHQL_RESPONSE, query=SIGN_UP, variables=json.dumps(variables)
    )
    log_in = await api.client.data(LOG_IN, {"input": {"email": email, "password": PASSWORD}})

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert codes(response) == ["METHOD_NOT_ALLOWED"]
    assert log_in["logIn"]["__typename"] == "InvalidCredentialsError"  # never signed up


# --- batching, on in an app of its own ---------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def batching(api: Api) -> AsyncIterator[GraphQLClient]:
    settings = api.settings.model_copy(
        update={
            "batching": True,
            "batch_max_operations": BATCH_MAX,
            "get_cache_max_age_seconds": 30,
        }
    )
    async with serving(create_app(settings), free_port()) as client:
        yield client


async def batch(client: GraphQLClient, operations: list[Any], **headers: str) -> httpx.Response:
    return await client.http.post(
        "/graphql", content=json.dumps(operations), headers={"content-type": JSON, **headers}
    )


async def test_a_batch_answers_each_operation_in_order(api: Api, batching: GraphQLClient) -> None:
    # Password checks cost a thousand each: three need a customer's budget, not an anonymous one.
    caller = await sign_up(api)
    email = f"{unique('batch')}@example.com"
    credentials = {"email": email, "password": PASSWORD}
    operations = [
        {"query": LOG_IN, "variables": {"input": credentials}},
        {"query": SIGN_UP, "variables": {"input": credentials | {"name": "Bea Batch"}}},
        {"query": LOG_IN, "variables": {"input": credentials}},
        {"query": "query Named { __typename }", "operationName": "Named"},
    ]

    response = await batch(batching, operations, authorization=f"Bearer {caller.token}")

    assert response.status_code == 200, response.text
    results = response.json()
    assert [r["data"] for r in results][3] == {"__typename": "Query"}
    typenames = [next(iter(r["data"].values()))["__typename"] for r in results[:3]]
    # Run one after the other, in order: the log-in after the sign-up finds the account.
    assert typenames == ["InvalidCredentialsError", "AuthSuccess", "AuthSuccess"]
    assert response.headers["cache-control"] == "no-store"


async def test_one_bad_operation_fails_alone_in_its_batch(batching: GraphQLClient) -> None:
    response = await batch(
        batching, [{"query": TYPENAME}, {"variables": {}}, {"query": "{"}, {"query": TYPENAME}]
    )

    assert response.status_code == 200, response.text
    first, missing, unparsed, last = response.json()
    assert first["data"] == last["data"] == {"__typename": "Query"}
    assert [e["extensions"]["code"] for e in missing["errors"]] == ["BAD_REQUEST"]
    assert [e["extensions"]["code"] for e in unparsed["errors"]] == ["GRAPHQL_PARSE_FAILED"]


@pytest.mark.parametrize(
    ("operations", "code"),
    [
        ([{"query": TYPENAME}] * (BATCH_MAX + 1), "BATCH_TOO_LARGE"),
        ([], "BAD_REQUEST"),
        ([{"query": TYPENAME}, "not an operation"], "BAD_REQUEST"),
    ],
    ids=["one operation too many", "an empty batch", "an item that is not an object"],
)
async def test_a_batch_over_the_bound_or_malformed_is_refused_whole(
    batching: GraphQLClient, operations: list[Any], code: str
) -> None:
    response = await batch(batching, operations, accept=GRAPHQL_RESPONSE)

    assert response.status_code == 400, response.text
    assert media_type(response) == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert codes(response) == [code]


async def test_a_batch_draws_on_one_budget(batching: GraphQLClient) -> None:
    single = await batching.gql(PRODUCT_PAGE)
    cost, budget = single["extensions"]["cost"]["requested"], single["extensions"]["cost"]["budget"]
    fits = budget // cost
    assert 1 <= fits < BATCH_MAX, single["extensions"]  # the test needs the budget to bind

    response = await batch(batching, [{"query": PRODUCT_PAGE}] * (fits + 1))

    results = response.json()
    assert all("errors" not in r for r in results[:fits]), results
    (refused,) = results[fits]["errors"]
    assert refused["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert refused["extensions"]["spent"] == fits * cost
    assert "batch" in refused["message"]


async def test_get_caching_keeps_the_max_age_the_settings_give(batching: GraphQLClient) -> None:
    response = await batching.http.get("/graphql", params={"query": TYPENAME})

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=30"
