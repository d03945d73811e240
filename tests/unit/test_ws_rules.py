"""The websocket rules that need no server: which client messages each sub-protocol
refuses (app/ws_messages.py), and a context that stops naming its caller once the
caller's token expired (schema/context.py), whatever still holds the context."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import pytest

from app.ws_messages import BAD_REQUEST, legacy_ws_reply, transport_ws_problem
from schema.auth import TokenService
from schema.context import Context
from schema.errors import ApiError
from writes.commands import Role

QUERY = {"query": "{ apiVersion }"}

MALFORMED_TRANSPORT: list[object] = [
    [],
    [{"type": "ping"}],
    "ping",
    42,
    None,
    {},
    {"type": 7},
    {"type": "nope"},
    {"type": "next", "id": "1", "payload": {}},  # a server message
    {"type": "connection_init", "payload": "Bearer x"},
    {"type": "ping", "payload": []},
    {"type": "subscribe", "payload": QUERY},
    {"type": "subscribe", "id": "", "payload": QUERY},
    {"type": "subscribe", "id": 1, "payload": QUERY},
    {"type": "subscribe", "id": ["1"], "payload": QUERY},
    {"type": "subscribe", "id": "1"},
    {"type": "subscribe", "id": "1", "payload": "{ apiVersion }"},
    {"type": "subscribe", "id": "1", "payload": {}},
    {"type": "subscribe", "id": "1", "payload": {"query": 1}},
    {"type": "subscribe", "id": "1", "payload": {**QUERY, "variables": []}},
    {"type": "subscribe", "id": "1", "payload": {**QUERY, "operationName": 3}},
    {"type": "subscribe", "id": "1", "payload": {**QUERY, "extensions": "x"}},
    {"type": "complete"},
    {"type": "complete", "id": {}},
]

WELL_FORMED_TRANSPORT: list[dict[str, Any]] = [
    {"type": "connection_init"},
    {"type": "connection_init", "payload": None},
    {"type": "connection_init", "payload": {"authorization": "Bearer x"}},
    {"type": "ping"},
    {"type": "pong", "payload": {"at": 1}},
    {"type": "subscribe", "id": "1", "payload": QUERY},
    {
        "type": "subscribe",
        "id": "op",
        "payload": {**QUERY, "variables": None, "operationName": None, "extensions": {}},
    },
    {"type": "complete", "id": "1"},
]


@pytest.mark.parametrize("message", MALFORMED_TRANSPORT)
def test_graphql_transport_ws_names_what_is_wrong_with_a_malformed_message(
    message: object,
) -> None:
    problem = transport_ws_problem(message)
    assert problem is not None
    # It travels as a close reason, which holds at most 123 bytes.
    assert 0 < len(problem.encode()) <= 123


@pytest.mark.parametrize("message", WELL_FORMED_TRANSPORT)
def test_graphql_transport_ws_lets_well_formed_messages_through(message: dict[str, Any]) -> None:
    assert transport_ws_problem(message) is None


@pytest.mark.parametrize(
    "message", [[], "start", 1, None, {}, {"type": None}, {"type": "start", "payload": QUERY}]
)
def test_legacy_graphql_ws_answers_an_unreadable_message_with_connection_error(
    message: object,
) -> None:
    reply = legacy_ws_reply(message)
    assert reply is not None
    assert reply["type"] == "connection_error"
    assert reply["payload"]["extensions"]["code"] == BAD_REQUEST


@pytest.mark.parametrize(
    "message",
    [
        {"type": "start", "id": "7"},
        {"type": "start", "id": "7", "payload": {"query": ["{ apiVersion }"]}},
        {"type": "start", "id": "7", "payload": {**QUERY, "variables": "x"}},
        {"type": "data", "id": "7", "payload": {}},
    ],
)
def test_legacy_graphql_ws_answers_a_bad_operation_with_an_error_for_its_id(
    message: dict[str, Any],
) -> None:
    reply = legacy_ws_reply(message)
    assert reply is not None
    assert (reply["type"], reply["id"]) == ("error", "7")
    assert reply["payload"]["extensions"]["code"] == BAD_REQUEST


@pytest.mark.parametrize(
    "message",
    [
        {"type": "connection_init", "payload": {}},
        {"type": "start", "id": "1", "payload": QUERY},
        {"type": "stop", "id": "1"},
        {"type": "connection_terminate"},
    ],
)
def test_legacy_graphql_ws_lets_well_formed_messages_through(message: dict[str, Any]) -> None:
    assert legacy_ws_reply(message) is None


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def websocket_context(tokens: TokenService, connection_params: dict[str, Any]) -> Context:
    """A websocket's context with only what identity needs: the token service and the
    connection_init payload."""
    return Context(
        request=cast("Any", None),
        response=None,
        bus=cast("Any", None),
        tokens=tokens,
        consistency=cast("Any", None),
        queries=cast("Any", None),
        throttles=cast("Any", None),
        correlation_id="unit",
        connection_params=connection_params,
    )


def test_a_context_stops_naming_its_caller_when_the_token_expires() -> None:
    """A websocket's context lives as long as the socket: between the token's expiry and
    the socket's close, an operation must not run as the old identity."""
    issued_at = int(time.time())  # PyJWT checks `exp` against the real clock
    clock = Clock(issued_at)
    tokens = TokenService("unit-test-secret-of-at-least-32-characters", "HS256", 60, "shop-api")
    object.__setattr__(tokens, "clock", clock)
    customer_id = uuid.uuid4()
    token = tokens.issue(customer_id, Role.CUSTOMER.value)
    context = websocket_context(tokens, {"authorization": f"Bearer {token}"})

    actor = context.actor()
    assert actor is not None
    assert actor.customer_id == customer_id
    assert context.identity_expires_at() == issued_at + 60

    clock.now = issued_at + 59.9
    assert context.actor() == actor
    clock.now = issued_at + 60
    with pytest.raises(ApiError) as refused:
        context.actor()
    assert refused.value.code == "UNAUTHENTICATED"
    assert "expired" in str(refused.value)


def test_an_anonymous_context_has_no_expiry() -> None:
    tokens = TokenService("unit-test-secret-of-at-least-32-characters", "HS256", 60, "shop-api")
    context = websocket_context(tokens, {})
    assert context.actor() is None
    assert context.identity_expires_at() is None
