"""Websocket frames read with the HTTP rules: at most the body limit, text only, JSON.

Strawberry's adapter hands its handlers decoded JSON and raises on the first frame it
cannot decode; ours names every bad frame instead, so each protocol answers it by its own
rules, and it refuses frames over the body limit whatever server runs the app (uvicorn's
ws_max_size is set to the same limit, but other servers have other defaults).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Literal, Protocol, cast

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.http.exceptions import WebSocketDisconnected

# A close frame's reason is at most 123 bytes (RFC 6455 section 5.5).
MAX_REASON_BYTES = 123


class FrameLimited(Protocol):
    max_frame_bytes: int


@dataclass(frozen=True)
class BadFrame:
    """A frame no sub-protocol can read: too big, binary, or not JSON."""

    kind: Literal["too_big", "binary", "not_json"]
    reason: str


class FrameReader(ASGIWebSocketAdapter):
    """Strawberry's ASGI websocket adapter, reading frames under the view's size limit."""

    def __init__(
        self,
        view: AsyncBaseHTTPView,  # type: ignore[type-arg]
        request: WebSocket,
        response: WebSocket,
    ) -> None:
        super().__init__(view, request, response)
        self.max_bytes = cast("FrameLimited", view).max_frame_bytes

    async def frames(self) -> AsyncIterator[object]:
        """Each frame's JSON value, or a BadFrame; ends once either side closed."""
        while self.ws.application_state != WebSocketState.DISCONNECTED:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text: str | None = message.get("text")
            size = len((message.get("bytes") or b"") if text is None else _utf8(text))
            if size > self.max_bytes:
                yield BadFrame("too_big", f"a message may not exceed {self.max_bytes} bytes")
            elif text is None:
                yield BadFrame("binary", "messages must be JSON in text frames")
            else:
                try:
                    # orjson, not json: it refuses nesting past 1024 levels instead of
                    # recursing until the interpreter gives up.
                    yield orjson.loads(text)
                except orjson.JSONDecodeError:
                    yield BadFrame("not_json", "a message must be valid JSON")

    async def close(self, code: int, reason: str) -> None:
        """Close with `code`, unless the socket is closed already (then there is no one to tell)."""
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            return
        short = reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
        with suppress(WebSocketDisconnect, WebSocketDisconnected):
            await super().close(code, short)


def _utf8(text: str) -> str | bytes:
    """The text as it travelled: its length in characters is its size in bytes if ASCII."""
    return text if text.isascii() else text.encode()
