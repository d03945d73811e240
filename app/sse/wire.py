"""The graphql-sse protocol's words on the wire (github.com/enisdenjo/graphql-sse, PROTOCOL.md).

Events are `next` (an execution result; in single connection mode `{"id", "payload"}`) and
`complete` (with an empty `data:` field, or browsers' EventSource never fires it; in
single connection mode `{"id"}`), and a comment line keeps an idle stream alive through
proxies. Requests carry their operation as the GraphQL-over-HTTP spec has it: the query
string for GET, a JSON object for POST.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import Send

from app.ws_messages import BAD_REQUEST, coded_error

EVENT_STREAM = "text/event-stream"
# A reservation's name in single connection mode, not a secret of ours.
TOKEN_HEADER = "x-graphql-event-stream-token"  # noqa: S105
TOKEN_PARAM = "token"  # noqa: S105
KEEP_ALIVE = b":\n\n"
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    # No cache may keep, and no proxy may compress or buffer, a live stream.
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


class BadOperationRequest(Exception):
    """The request does not carry a GraphQL operation the protocol can read."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class OperationParams:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


# What a client may take a JSON answer as (GraphQL over HTTP), wildcards included.
_JSON_TYPES = frozenset(
    {"application/graphql-response+json", "application/json", "application/*", "*/*"}
)


def wants_event_stream(accept: str) -> bool:
    """Whether the client prefers an event stream to JSON, by the Accept header's q values
    and, at equal q, its order. urql (and others) list text/event-stream after the JSON
    types for incremental delivery: a plain request, which must get JSON."""
    stream: tuple[float, int] | None = None
    json: tuple[float, int] | None = None
    for index, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        rank = (_quality(params), -index)
        if media.lower() == EVENT_STREAM:
            stream = max(stream or rank, rank)
        elif media.lower() in _JSON_TYPES:
            json = max(json or rank, rank)
    return stream is not None and stream[0] > 0 and (json is None or stream > json)


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def next_event(result: dict[str, Any], op_id: str | None = None) -> bytes:
    data = result if op_id is None else {"id": op_id, "payload": result}
    return b"event: next\ndata: " + orjson.dumps(data) + b"\n\n"


def complete_event(op_id: str | None = None) -> bytes:
    if op_id is None:
        return b"event: complete\ndata: \n\n"
    return b"event: complete\ndata: " + orjson.dumps({"id": op_id}) + b"\n\n"


def error_result(message: str, code: str) -> dict[str, Any]:
    """An execution result carrying one coded error and no data."""
    return {"errors": [coded_error(message, code)]}


def query_param(query_string: bytes, name: str) -> str | None:
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get(name)
    return values[0] if values else None


def operation_params(method: str, query_string: bytes, body: bytes) -> OperationParams:
    """The operation a GET's query string or a POST's JSON body carries."""
    if method == "GET":
        raw: dict[str, Any] = {
            key: values[0]
            for key, values in parse_qs(query_string.decode("latin-1")).items()
            if key in ("query", "variables", "operationName", "extensions")
        }
        for key in ("variables", "extensions"):
            if raw.get(key):
                raw[key] = _json(raw[key], f"the {key!r} parameter")
    else:
        decoded = _json(body, "the request body")
        if not isinstance(decoded, dict):
            raise BadOperationRequest("the request body must be a JSON object (no batches)")
        raw = decoded
    query = raw.get("query")
    if not isinstance(query, str) or not query:
        raise BadOperationRequest("the operation needs a non-empty string 'query'")
    for key in ("variables", "extensions"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            raise BadOperationRequest(f"the operation's {key!r} must be an object or null")
    name = raw.get("operationName")
    if name is not None and not isinstance(name, str):
        raise BadOperationRequest("the operation's 'operationName' must be a string or null")
    return OperationParams(query, raw.get("variables"), name, raw.get("extensions"))


async def send_json_error(
    send: Send,
    status: int,
    message: str,
    code: str = BAD_REQUEST,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A plain HTTP answer `{"errors": [...]}` with the error's code."""
    body = orjson.dumps(error_result(message, code))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_empty(send: Send, status: int, body: bytes = b"", text: bool = False) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if text:
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json(text: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadOperationRequest(f"{what} is not valid JSON") from None
