"""What a well-formed client message is, in each websocket sub-protocol.

graphql-transport-ws (github.com/enisdenjo/graphql-ws, PROTOCOL.md) closes the socket with
4400 on any message "of a type or format which is not specified"; the legacy graphql-ws
protocol (subscriptions-transport-ws) answers a message it cannot parse with
`connection_error` and one of an unknown type with `error`, and keeps the socket open.
Strawberry checks little of this and crashes on the rest (a JSON array frame raised a
TypeError out of its handler), so every message is checked here before it reaches it.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

BAD_REQUEST = "BAD_REQUEST"
TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"


def transport_ws_problem(message: object) -> str | None:
    """Why a graphql-transport-ws client message is malformed; None when it is not."""
    if not isinstance(message, dict):
        return "a message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message must have a string 'type'"
    if kind in ("connection_init", "ping", "pong"):
        return _optional(message, "payload", dict, kind)
    if kind == "complete":
        return _id_problem(message, kind)
    if kind == "subscribe":
        return _id_problem(message, kind) or _operation_problem(message.get("payload"))
    return f"unknown message type {kind[:40]!r}"


def legacy_ws_reply(message: object) -> dict[str, Any] | None:
    """The answer the legacy graphql-ws protocol gives a malformed client message (a
    `connection_error` when it names no operation, else an `error` for its id); None
    when the message is well formed."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return connection_error("a message must be a JSON object with a string 'type'")
    kind = message["type"]
    if kind in ("connection_init", "connection_terminate"):
        return None  # strawberry answers a connection_init payload that is not an object
    if kind in ("start", "stop"):
        problem = _id_problem(message, kind)
        if problem is not None:
            return connection_error(problem)
        if kind == "stop":
            return None
        problem = _operation_problem(message.get("payload"))
        return None if problem is None else legacy_error(message["id"], problem, BAD_REQUEST)
    reply = legacy_error(None, f"unknown message type {kind[:40]!r}", BAD_REQUEST)
    if isinstance(message.get("id"), str):
        reply["id"] = message["id"]
    return reply


def coded_error(message: str, code: str) -> dict[str, Any]:
    """A GraphQL error as the protocols carry it, with its `extensions.code`."""
    return dict(GraphQLError(message, extensions={"code": code}).formatted)


def connection_error(message: str) -> dict[str, Any]:
    return {"type": "connection_error", "payload": coded_error(message, BAD_REQUEST)}


def legacy_error(op_id: str | None, message: str, code: str) -> dict[str, Any]:
    reply: dict[str, Any] = {"type": "error", "payload": coded_error(message, code)}
    if op_id is not None:
        reply["id"] = op_id
    return reply


def too_many_subscriptions(cap: int) -> str:
    return (
        f"this connection already runs {cap} operations, the most it may "
        "(WS_MAX_SUBSCRIPTIONS_PER_CONNECTION): complete one before starting another"
    )


def _id_problem(message: dict[str, Any], kind: str) -> str | None:
    op_id = message.get("id")
    if not isinstance(op_id, str) or not op_id:
        return f"a {kind} message needs a non-empty string 'id'"
    return None


def _operation_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "the operation payload must be an object"
    # A persisted document (app/persisted/sockets.py) is named instead of sent.
    extensions = payload.get("extensions")
    named = isinstance(payload.get("documentId"), str) or (
        isinstance(extensions, dict) and isinstance(extensions.get("persistedQuery"), dict)
    )
    if not isinstance(payload.get("query"), str) and not (named and "query" not in payload):
        return "the operation payload needs a string 'query' (or a persisted document's name)"
    return (
        _optional(payload, "variables", dict, "operation")
        or _optional(payload, "operationName", str, "operation")
        or _optional(payload, "extensions", dict, "operation")
    )


def _optional(container: dict[str, Any], key: str, kind: type, what: str) -> str | None:
    value = container.get(key)
    if value is None or isinstance(value, kind):
        return None
    expected = "an object" if kind is dict else "a string"
    return f"the {what} {key!r} must be {expected} or null"
