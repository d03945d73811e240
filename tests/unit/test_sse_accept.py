"""Which requests become event streams: those that prefer text/event-stream to JSON."""

from __future__ import annotations

import pytest

from app.sse.wire import wants_event_stream

URQL = (
    "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed"
)


@pytest.mark.parametrize(
    "accept",
    [
        "text/event-stream",  # graphql-sse's client, EventSource
        "text/event-stream, application/json;q=0.9",
        "application/json;q=0.5, text/event-stream",
        "Text/Event-Stream; charset=utf-8",
    ],
)
def test_a_preferred_event_stream_is_streamed(accept: str) -> None:
    assert wants_event_stream(accept)


@pytest.mark.parametrize(
    "accept",
    [
        URQL,  # urql lists it after JSON, for incremental delivery it does not need here
        "application/json, text/event-stream",
        "*/*",
        "",
        "text/event-stream;q=0",
        "text/event-stream;q=0.5, */*",
        "text/event-stream;q=nonsense",
    ],
)
def test_json_first_or_no_stream_gets_json(accept: str) -> None:
    assert not wants_event_stream(accept)
