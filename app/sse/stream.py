"""One text/event-stream response and the operations that write into it.

The operations put events into a bounded queue and one writer sends them, with a
keep-alive comment whenever the stream was idle for `keep_alive_s`, so proxies do not
cut it. A client that reads slowly holds its operations back at the queue: a
subscription then falls behind its hub listener and is dropped (SUBSCRIPTION_DROPPED),
as over a websocket. The stream ends when its operations are done and everything they
wrote was sent (`finish`), at once when the client leaves or the server shuts down
(`abort`), and every operation task has ended before `serve` returns: a stopped
subscription releases its hub listener for sure (app.ws_protocols.ended).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any

from starlette.types import Receive, Send

from app.sse.wire import KEEP_ALIVE, STREAM_HEADERS, complete_event, error_result, next_event
from app.ws_protocols import ended

log = logging.getLogger(__name__)

QUEUED_EVENTS = 16
# A last write to a client that stopped reading may never drain: not waited on for longer.
FINAL_WRITE_S = 5.0

Results = AsyncIterator[dict[str, Any]]


class EventStream:
    def __init__(self, keep_alive_s: float, *, single_connection: bool) -> None:
        self.keep_alive_s = keep_alive_s
        self.single_connection = single_connection
        self.operations: dict[str, asyncio.Task[None]] = {}
        self._events: deque[bytes | None] = deque()
        self._sent = asyncio.Event()  # set whenever the writer took an event (or gave up)
        self._queued = asyncio.Event()  # set whenever an event waits for the writer
        self._aborted = asyncio.Event()
        self._done = False
        self.connected = False

    def start(self, op_id: str, results: Callable[[], Awaitable[Results]]) -> None:
        """Run one operation: each result a `next`, then `complete`."""
        task = asyncio.create_task(self._pump(op_id, results), name=f"sse-operation-{op_id}")
        self.operations[op_id] = task
        task.add_done_callback(lambda _: self._forget(op_id, task))

    async def stop(self, op_id: str) -> bool:
        """Stop one operation (it sends nothing more); False when it was not running."""
        task = self.operations.pop(op_id, None)
        if task is None:
            return False
        await ended([task])
        return True

    async def stop_all(self) -> None:
        tasks = list(self.operations.values())
        self.operations.clear()
        await ended(tasks)

    async def put(self, event: bytes | None) -> None:
        """Queue an event, waiting while QUEUED_EVENTS wait already; once the stream has
        ended, events go nowhere (and nobody waits)."""
        while not self._done and len(self._events) >= QUEUED_EVENTS:
            self._sent.clear()
            await self._sent.wait()
        if not self._done:
            self._events.append(event)
            self._queued.set()

    async def finish(self) -> None:
        """End the stream once everything put before was sent."""
        await self.put(None)

    def abort(self) -> None:
        """End the stream now, without a `complete`: the client reconnects (and resumes
        with afterToken)."""
        self._aborted.set()

    async def serve(self, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        """Answer with the stream until it ends; then every operation has ended."""
        self.connected = True
        await send(
            {"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS + headers}
        )
        # Some browsers only report the stream open once a first chunk arrives.
        await send({"type": "http.response.body", "body": KEEP_ALIVE, "more_body": True})
        writer = asyncio.create_task(self._write(send), name="sse-writer")
        left = asyncio.create_task(_client_left(receive), name="sse-client-left")
        aborted = asyncio.create_task(self._aborted.wait(), name="sse-aborted")
        watchers = {writer, left, aborted}
        try:
            await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            client_gone = left.done()
            self._done = True
            self._sent.set()  # whoever waits to put gives up
            await self.stop_all()
            for watcher in watchers:
                watcher.cancel()
            await asyncio.wait(watchers)
            if not client_gone:
                with suppress(Exception):
                    async with asyncio.timeout(FINAL_WRITE_S):
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if not writer.cancelled() and writer.exception() is not None:
            log.warning("event stream write failed: %r", writer.exception())

    async def _write(self, send: Send) -> None:
        while True:
            if not self._events:
                self._queued.clear()
                with suppress(TimeoutError):
                    async with asyncio.timeout(self.keep_alive_s):
                        await self._queued.wait()
            event = self._events.popleft() if self._events else KEEP_ALIVE
            self._sent.set()
            if event is None:
                return
            await send({"type": "http.response.body", "body": event, "more_body": True})

    async def _pump(self, op_id: str, results: Callable[[], Awaitable[Results]]) -> None:
        event_id = op_id if self.single_connection else None
        try:
            source = await results()
            try:
                async for result in source:
                    await self.put(next_event(result, event_id))
            finally:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    with suppress(RuntimeError):  # "already running": the cancel ends it
                        await aclose()
        except Exception:
            # strawberry turns resolver errors into results: this is a bug of ours.
            log.exception("event stream operation %r failed", op_id)
            internal = error_result("Internal server error", "INTERNAL_SERVER_ERROR")
            await self.put(next_event(internal, event_id))
        await self.put(complete_event(event_id))
        if not self.single_connection:
            await self.finish()

    def _forget(self, op_id: str, task: asyncio.Task[None]) -> None:
        if self.operations.get(op_id) is task:
            del self.operations[op_id]


async def _client_left(receive: Receive) -> None:
    """Return once the client has gone (its request body was read before the stream began)."""
    while (await receive())["type"] != "http.disconnect":
        pass
