"""uvicorn's server, whose shutdown does not wait on a client that stopped reading.

uvicorn closes a connection with `transport.close()`, which first flushes what the
transport still buffers. A websocket client that stopped reading (a stalled tab, a
process that leaked its socket) never lets that buffer drain: its close frame never
leaves, `connection_lost` never comes, and `Server.shutdown` waits for the connection
forever, on SIGTERM too. The subscriptions themselves had already ended; only the socket
held the process. A connection still closing after `CLOSE_GRACE_S` is aborted instead.
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import suppress

import uvicorn

# As long as the peer gets to read the server's close frame (uvicorn waits 10 s for a
# websocket close handshake; a client that reads at all drains in far less).
CLOSE_GRACE_S = 5.0
CHECK_EVERY_S = 0.5


class ShopServer(uvicorn.Server):
    """uvicorn.Server that aborts, during shutdown, connections stuck closing."""

    close_grace_s = CLOSE_GRACE_S

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn waits for every response to finish, and an event stream never does by
        # itself: the app's streams end first (app.sse.EventStreams.end_all).
        streams = getattr(getattr(self.config.app, "state", None), "event_streams", None)
        if streams is not None:
            streams.end_all()
        reaper = asyncio.create_task(self._abort_stuck_closes(), name="abort-stuck-closes")
        try:
            await super().shutdown(sockets)
        finally:
            reaper.cancel()
            with suppress(asyncio.CancelledError):
                await reaper

    async def _abort_stuck_closes(self) -> None:
        loop = asyncio.get_running_loop()
        closing_since: dict[asyncio.Transport, float] = {}
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            now = loop.time()
            for connection in list(self.server_state.connections):
                transport: asyncio.Transport | None = getattr(connection, "transport", None)
                if transport is None or not transport.is_closing():
                    continue  # still serving a request: the graceful shutdown waits for it
                since = closing_since.setdefault(transport, now)
                if now - since >= self.close_grace_s:
                    transport.abort()
