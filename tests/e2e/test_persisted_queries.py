"""Persisted documents over real HTTP and Redis: Apollo's automatic persisted queries
exactly as its link speaks them, shared by API processes and bounded, and trusted
documents from a manifest in Apollo's, Relay's and GraphQL Codegen's formats."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import strawberry.schema.schema as strawberry_schema
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.extensions.parser_cache import DEFAULT_MAXSIZE, _get_parse_cache

from app.asgi import create_app
from app.settings import Settings
from tests.conftest import Api
from tests.sse_client import sse
from tests.support import (
    LEGACY_WS,
    TRANSPORT_WS,
    GraphQLClient,
    event_count,
    free_port,
    graphql_ws,
    serving,
    unique,
)

CATALOG = "query Catalog { products(first: 2) { edges { node { id } } } }"
DEEP = "{ products(first: 1) { edges { node { id } } } }"  # depth 4


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(query_hash: str, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": query_hash}}


async def post(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/graphql", json=body)
    assert response.headers["content-type"].startswith("application/json"), response.text
    decoded: dict[str, Any] = response.json()
    return decoded


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def unique_query() -> str:
    """A document no other test registered (its operation name is new)."""
    return f"query Q{unique('').replace('-', '')} {{ products(first: 1) {{ edges {{ node {{ id }} }} }} }}"


@asynccontextmanager
async def own_api(settings: Settings, **changes: Any) -> AsyncIterator[GraphQLClient]:
    own = settings.model_copy(update={"port": free_port(), **changes})
    async with serving(create_app(own), own.port) as client:
        yield client


async def test_apollos_round_trip_not_found_then_registered_then_served_by_hash(api: Api) -> None:
    http, query = api.client.http, unique_query()
    query_hash = sha256(query)

    missed = await post(http, {"extensions": apq(query_hash)})
    # What Apollo's persisted-query link looks for before it sends the full document.
    assert missed["errors"][0]["message"] == "PersistedQueryNotFound"
    assert codes(missed) == ["PERSISTED_QUERY_NOT_FOUND"]

    registered = await post(http, {"query": query, "extensions": apq(query_hash)})
    assert "errors" not in registered, registered
    served = await post(http, {"extensions": apq(query_hash)})
    assert served["data"] == registered["data"]

    # GET, as the link sends hashed queries with useGETForHashedQueries.
    response = await http.get("/graphql", params={"extensions": json.dumps(apq(query_hash))})
    assert response.json()["data"] == registered["data"]


async def test_a_hash_that_is_not_the_documents_or_a_bad_version_is_refused_and_kept_nowhere(
    api: Api,
) -> None:
    http, query = api.client.http, unique_query()
    wrong = sha256(query + " ")
    mismatch = await post(http, {"query": query, "extensions": apq(wrong)})
    assert codes(mismatch) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert "data" not in mismatch or mismatch["data"] is None
    assert codes(await post(http, {"extensions": apq(wrong)})) == ["PERSISTED_QUERY_NOT_FOUND"]

    version = await post(http, {"query": query, "extensions": apq(sha256(query), version=2)})
    assert codes(version) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
    for bad in ({"persistedQuery": "x"}, {"persistedQuery": {"version": 1, "sha256Hash": "AB"}}):
        assert codes(await post(http, {"query": query, "extensions": bad})) == ["BAD_REQUEST"]


async def test_a_hashed_mutation_over_get_runs_nothing(
    api: Api, admin_token: str, engine: AsyncEngine
) -> None:
    sku = unique("SKU")
    mutation = (
        f'mutation {{ createProduct(input: {{sku: "{sku}", name: "GET mug", priceCents: 100, '
        "stock: 1}) { __typename } }"
    )
    query_hash = sha256(mutation)
    headers = {"Authorization": f"Bearer {admin_token}"}
    created = await api.client.http.post(
        "/graphql", json={"query": mutation, "extensions": apq(query_hash)}, headers=headers
    )
    assert created.json()["data"]["createProduct"]["__typename"] == "ProductSuccess"
    before = await event_count(engine)
    response = await api.client.http.get(
        "/graphql", params={"extensions": json.dumps(apq(query_hash))}, headers=headers
    )
    assert response.status_code == 405, response.text
    assert await event_count(engine) == before


async def test_every_api_process_shares_the_registered_documents(
    api: Api, settings: Settings
) -> None:
    query = unique_query()
    await post(api.client.http, {"query": query, "extensions": apq(sha256(query))})
    async with own_api(settings) as other:
        served = await post(other.http, {"extensions": apq(sha256(query))})
    assert "errors" not in served, served


async def test_the_store_keeps_the_most_recently_used_documents_only(settings: Settings) -> None:
    prefix = f"{settings.redis_prefix}:{unique('apq')}"
    async with own_api(settings, apq_max_documents=2, redis_prefix=prefix) as client:
        first, second, third = unique_query(), unique_query(), unique_query()
        for query in (first, second, third):
            await post(client.http, {"query": query, "extensions": apq(sha256(query))})
        assert codes(await post(client.http, {"extensions": apq(sha256(first))})) == [
            "PERSISTED_QUERY_NOT_FOUND"
        ]
        for kept in (second, third):
            assert "errors" not in await post(client.http, {"extensions": apq(sha256(kept))})


async def test_a_hostile_document_is_refused_by_the_limits_and_not_kept(
    settings: Settings,
) -> None:
    async with own_api(settings, max_query_depth=2) as client:
        refused = await post(client.http, {"query": DEEP, "extensions": apq(sha256(DEEP))})
        assert codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
        again = await post(client.http, {"extensions": apq(sha256(DEEP))})
        assert codes(again) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_persisted_document_is_parsed_and_validated_once_per_process(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = unique_query()
    await post(api.client.http, {"query": query, "extensions": apq(sha256(query))})
    validations: list[int] = []
    real = graphql.validate

    def counting(*args: Any, **kwargs: Any) -> Any:
        validations.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate", counting)
    parse_cache: Any = _get_parse_cache(DEFAULT_MAXSIZE)
    parses = parse_cache.cache_info().misses
    for _ in range(3):
        served = await post(api.client.http, {"extensions": apq(sha256(query))})
        assert "errors" not in served, served
    assert validations == []
    assert parse_cache.cache_info().misses == parses
    # The counters do count: a document the process has not seen is parsed and validated.
    await post(api.client.http, {"query": unique_query()})
    assert validations == [1]
    assert parse_cache.cache_info().misses == parses + 1


async def test_redis_down_sends_clients_back_to_full_documents_never_a_500(
    settings: Settings,
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    async with own_api(settings, redis_url=nowhere, redis_timeout_ms=200) as client:
        query = unique_query()
        missed = await post(client.http, {"extensions": apq(sha256(query))})
        assert codes(missed) == ["PERSISTED_QUERY_NOT_FOUND"]
        full = await post(client.http, {"query": query, "extensions": apq(sha256(query))})
        assert "errors" not in full, full


def manifests(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """One manifest per format, each holding CATALOG: (its file, the id it names it by)."""
    digest = sha256(CATALOG)
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": digest, "name": "Catalog", "type": "query", "body": CATALOG}],
    }
    files = {
        "apollo": (apollo, digest),
        "relay": ({"relay-catalog-1": CATALOG}, "relay-catalog-1"),
        "codegen": ({digest: CATALOG}, f"sha256:{digest}"),
    }
    found = {}
    for name, (content, document_id) in files.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content))
        found[name] = (path, document_id)
    return found


@pytest.mark.parametrize("kind", ["apollo", "relay", "codegen"])
async def test_persisted_only_serves_the_manifests_documents_and_nothing_else(
    settings: Settings, tmp_path: Path, kind: str
) -> None:
    path, document_id = manifests(tmp_path)[kind]
    async with own_api(
        settings, persisted_queries="persisted_only", trusted_documents_path=path
    ) as client:
        by_id = await post(client.http, {"documentId": document_id})
        assert "errors" not in by_id, by_id
        relay = await post(client.http, {"doc_id": document_id})
        assert relay["data"] == by_id["data"]
        by_hash = await post(client.http, {"extensions": apq(sha256(CATALOG))})
        assert by_hash["data"] == by_id["data"]
        text_and_hash = await post(
            client.http, {"query": CATALOG, "extensions": apq(sha256(CATALOG))}
        )
        assert text_and_hash["data"] == by_id["data"]

        free_form = await post(client.http, {"query": "{ __typename }"})
        assert codes(free_form) == ["PERSISTED_QUERY_REQUIRED"]
        other = unique_query()
        registering = await post(client.http, {"query": other, "extensions": apq(sha256(other))})
        assert codes(registering) == ["PERSISTED_QUERY_REQUIRED"]
        assert codes(await post(client.http, {"documentId": "nope"})) == [
            "PERSISTED_QUERY_NOT_FOUND"
        ]
        response = await client.http.get("/graphql", params={"documentId": document_id})
        assert response.json()["data"] == by_id["data"]


async def test_apq_off_tells_clients_to_stop_hashing(settings: Settings) -> None:
    async with own_api(settings, persisted_queries="off") as client:
        query = unique_query()
        body = await post(client.http, {"query": query, "extensions": apq(sha256(query))})
        assert codes(body) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
        assert "errors" not in await post(client.http, {"query": query})


def test_a_manifest_that_lies_about_its_hashes_stops_the_start_up(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "apollo.json"
    path.write_text(json.dumps({
        "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{"id": "0" * 64, "name": "Catalog", "type": "query", "body": CATALOG}],
    }))  # fmt: skip
    with pytest.raises(ValueError, match="not its body's sha256"):
        create_app(settings.model_copy(update={"trusted_documents_path": path}))
    with pytest.raises(ValueError, match="needs TRUSTED_DOCUMENTS_PATH"):
        create_app(settings.model_copy(update={"persisted_queries": "persisted_only"}))


async def test_persisted_only_holds_over_websockets_and_event_streams(
    settings: Settings, tmp_path: Path
) -> None:
    path, document_id = manifests(tmp_path)["apollo"]
    own = settings.model_copy(
        update={
            "port": free_port(),
            "persisted_queries": "persisted_only",
            "trusted_documents_path": path,
        }
    )
    base_url = f"http://127.0.0.1:{own.port}"
    async with serving(create_app(own), own.port) as client:
        for protocol in (TRANSPORT_WS, LEGACY_WS):
            async with graphql_ws(base_url, protocol) as ws:
                free_form = await ws.subscribe("{ __typename }")
                errors = await ws.refusal(free_form)
                assert [e["extensions"]["code"] for e in errors] == ["PERSISTED_QUERY_REQUIRED"]
                op_id = str(next(ws._ids))
                kind = "start" if ws.legacy else "subscribe"
                await ws.send({"type": kind, "id": op_id, "payload": {"documentId": document_id}})
                assert "products" in await ws.data(op_id), protocol
        async with sse(client.http, "{ __typename }") as stream:
            refused = await stream.next()
        assert codes(refused) == ["PERSISTED_QUERY_REQUIRED"]
