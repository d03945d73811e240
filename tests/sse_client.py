"""A graphql-sse client over real HTTP (httpx streaming), as the protocol's clients speak it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

EVENT_STREAM = "text/event-stream"
TOKEN_HEADER = "x-graphql-event-stream-token"


@dataclass(frozen=True)
class SseEvent:
    event: str  # "next" or "complete"; "" for a comment (keep-alive)
    data: Any


@dataclass
class SseStream:
    """One open text/event-stream response, read event by event."""

    response: httpx.Response
    _lines: AsyncIterator[str] = field(init=False)
    comments: int = 0

    def __post_init__(self) -> None:
        self._lines = self.response.aiter_lines()

    async def event(self, budget_s: float = 30, *, comments: bool = False) -> SseEvent:
        """The next event (keep-alive comments counted and skipped unless `comments`);
        EOFError once the server ended the stream."""
        async with asyncio.timeout(budget_s):
            while True:
                parsed = await self._read()
                if parsed.event or comments:
                    return parsed

    async def next(self, budget_s: float = 30) -> dict[str, Any]:
        """The payload of the next event, which must be `next`."""
        event = await self.event(budget_s)
        assert event.event == "next", event
        payload: dict[str, Any] = event.data
        return payload

    async def data(self, budget_s: float = 30) -> dict[str, Any]:
        payload = await self.next(budget_s)
        assert "errors" not in payload, payload
        data: dict[str, Any] = payload["data"]
        return data

    async def rest(self, budget_s: float = 30) -> list[SseEvent]:
        """Every event until the server ends the stream."""
        events: list[SseEvent] = []
        try:
            while True:
                events.append(await self.event(budget_s))
        except EOFError:
            return events

    async def _read(self) -> SseEvent:
        name, comment = "", False
        data_lines: list[str] = []
        async for line in self._lines:
            if line == "":
                if name or data_lines:
                    data = "\n".join(data_lines).strip()
                    return SseEvent(name, orjson.loads(data) if data else None)
                if comment:
                    self.comments += 1
                    return SseEvent("", None)
                continue
            if line.startswith(":"):
                comment = True
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data_lines.append(line[5:])
        raise EOFError("the server ended the stream")


def sse_headers(token: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"accept": EVENT_STREAM, **extra}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return headers


@asynccontextmanager
async def sse(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> AsyncIterator[SseStream]:
    """A distinct-connection stream for one operation; the stream is closed on exit."""
    all_headers = sse_headers(token, **(headers or {}))
    if method == "GET":
        params = {"query": query, "variables": orjson.dumps(variables or {}).decode()}
        request = http.build_request("GET", "/graphql", params=params, headers=all_headers)
    else:
        body = {"query": query, "variables": variables or {}}
        request = http.build_request("POST", "/graphql", json=body, headers=all_headers)
    response = await http.send(request, stream=True)
    try:
        assert response.status_code == 200, (response.status_code, await response.aread())
        assert response.headers["content-type"].startswith(EVENT_STREAM), response.headers
        yield SseStream(response)
    finally:
        await response.aclose()
