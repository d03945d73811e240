"""A GraphQL-over-HTTP request's parameters, checked: a clear, coded 400 for each mistake.

Stricter than strawberry's parser where the spec asks (`operationName` must be a string,
empty GET parameters count as absent) and with batches bounded. A missing `query` is let
through: strawberry refuses it later, after anything that may supply one (persisted queries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from strawberry.http import GraphQLRequestData, GraphQLRequestProtocol

from app.graphql_http.refusals import Refused, bad_request, unsupported_media_type


@dataclass
class OperationRequest(GraphQLRequestData):
    """An operation's parameters, with the id of a trusted document if it names one
    (`documentId`, GraphQL over HTTP's persisted documents; `doc_id`, Relay's)."""

    document_id: str | None = None


@dataclass(frozen=True)
class BatchPolicy:
    """JSON-array bodies (Apollo's BatchHttpLink) are refused unless `enabled`."""

    enabled: bool = False
    max_operations: int = 10


def check_content_type(content_type: str | None, *, multipart: bool = False) -> None:
    """A POST body must be JSON in UTF-8 (multipart too, where uploads are enabled)."""
    media_type, _, params = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    if multipart and media_type == "multipart/form-data":
        return
    if media_type != "application/json":
        raise unsupported_media_type(content_type)
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            raise unsupported_media_type(content_type)


def operations_from_body(
    body: bytes, protocol: GraphQLRequestProtocol, batches: BatchPolicy
) -> GraphQLRequestData | list[GraphQLRequestData]:
    """The operation of a POST body, or the operations of a batch (a JSON array)."""
    if not body.strip():
        raise bad_request("The request body is empty: send a JSON object with `query`")
    try:
        decoded = orjson.loads(body)  # refuses invalid UTF-8 and NaN too
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None
    if isinstance(decoded, list):
        return _batch(decoded, protocol, batches)
    return operation(decoded, protocol)


def operation_from_query_string(
    params: Mapping[str, Any], protocol: GraphQLRequestProtocol
) -> GraphQLRequestData:
    """A GET request's operation; an empty parameter is as good as none (the spec)."""
    decoded: dict[str, Any] = {}
    for name in ("query", "operationName", "variables", "extensions", "documentId", "doc_id"):
        value = params.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise bad_request(f"`{name}` must be given once")
        if name in ("variables", "extensions"):
            try:
                decoded[name] = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise bad_request(f"`{name}` must be a JSON-encoded object") from None
        else:
            decoded[name] = value
    return operation(decoded, protocol)


def operation(item: object, protocol: GraphQLRequestProtocol) -> GraphQLRequestData:
    if not isinstance(item, dict):
        raise bad_request("The request body must be a JSON object with `query`")
    query = item.get("query")
    if query is not None and not isinstance(query, str):
        raise bad_request("`query` must be a string: the GraphQL document's source text")
    operation_name = item.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise bad_request("`operationName` must be a string")
    for name in ("variables", "extensions"):
        value = item.get(name)
        if value is not None and not isinstance(value, dict):
            raise bad_request(f"`{name}` must be an object (a map)")
    document_id = item.get("documentId", item.get("doc_id"))
    if document_id is not None and not isinstance(document_id, str):
        raise bad_request("`documentId` must be a string")
    return OperationRequest(
        query=query,
        variables=item.get("variables"),
        operation_name=operation_name,
        extensions=item.get("extensions"),
        protocol=protocol,
        document_id=document_id,
    )


def _batch(
    items: list[Any], protocol: GraphQLRequestProtocol, batches: BatchPolicy
) -> list[GraphQLRequestData]:
    if not batches.enabled:
        raise Refused(
            400,
            "BATCHING_DISABLED",
            "This server does not accept batches (a JSON array body): "
            "send one operation per request",
        )
    if protocol != "http":
        raise bad_request("A batch cannot be streamed: send one operation per request")
    if not items:
        raise bad_request("The batch is empty: send at least one operation")
    if len(items) > batches.max_operations:
        raise Refused(
            400,
            "BATCH_TOO_LARGE",
            f"A batch may hold at most {batches.max_operations} operations; "
            f"this one has {len(items)}",
        )
    return [operation(item, protocol) for item in items]
