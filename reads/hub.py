"""One Redis pub/sub connection per API process, fanned out to everyone who listens.

Read-your-writes waiters and subscriptions both listen for the worker's batch
notifications `{projection, ids, position}`. The hub subscribes to the channel while at
least one listener exists and unsubscribes when the last one leaves, so nothing stays
subscribed in Redis. Delivery never blocks: a listener whose bounded queue is full is
marked too slow and dropped, and the others go on.

The number of listeners is reported on every change (`on_listener_count`: /metrics
exports it), and is what tests wait on: a count that stays up once clients have left is
a listener leaked, and with it the process's Redis subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 256
READ_POLL_S = 1.0


@dataclass(frozen=True)
class Notification:
    projection: str
    ids: tuple[str, ...]
    position: int
    rebuilt: bool = False
    # The checkpoint the batch started from: the batch covers (after, position]. None from
    # a worker that does not say (reads.near_cache then cannot tell a gap).
    after: int | None = None

    @classmethod
    def decode(cls, data: bytes | str) -> Notification:
        """A notification from its JSON (workers/notifications.py writes it)."""
        body = orjson.loads(data)
        after = body.get("after")
        return cls(
            projection=body["projection"],
            ids=tuple(body.get("ids", ())),
            position=int(body["position"]),
            rebuilt=bool(body.get("rebuilt", False)),
            after=None if after is None else int(after),
        )


class ListenerDropped(Exception):
    """The listener fell too far behind, or the notification channel was lost."""


class Listener:
    def __init__(self, projections: frozenset[str], maxsize: int) -> None:
        self.projections = projections
        self._queue: asyncio.Queue[Notification | None] = asyncio.Queue(maxsize)
        self.dropped: str | None = None

    def offer(self, notification: Notification) -> None:
        if self.dropped is None and notification.projection in self.projections:
            try:
                self._queue.put_nowait(notification)
            except asyncio.QueueFull:
                self.drop("too slow: its notification queue is full")

    def drop(self, reason: str) -> None:
        if self.dropped is None:
            self.dropped = reason
            # Wake a reader blocked on an empty queue; a full queue is drained first.
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)

    async def next(self) -> Notification:
        """The next notification; ListenerDropped once the listener was dropped."""
        if self.dropped is not None and self._queue.empty():
            raise ListenerDropped(self.dropped)
        item = await self._queue.get()
        if item is None or self.dropped is not None:
            raise ListenerDropped(self.dropped or "closed")
        return item


def _ignore_count(count: int) -> None:
    pass


class ProjectionHub:
    def __init__(
        self,
        redis: Redis,
        channel: str,
        on_listener_count: Callable[[int], None] = _ignore_count,
    ) -> None:
        self._redis = redis
        self._channel = channel
        self._on_listener_count = on_listener_count
        self._listeners: set[Listener] = set()
        self._lock = asyncio.Lock()
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._listeners_changed = asyncio.Event()

    @property
    def listener_count(self) -> int:
        """The subscriptions and read-your-writes waiters listening in this process now."""
        return len(self._listeners)

    async def until_listener_count(self, count: int) -> None:
        """Return once exactly `count` listeners are registered (the subscriptions and
        waiters alive in this process): what tests and probes wait on, without polling."""
        while len(self._listeners) != count:
            await self._listeners_changed.wait()

    @asynccontextmanager
    async def listen(
        self, projections: Iterable[str], maxsize: int = DEFAULT_QUEUE
    ) -> AsyncIterator[Listener]:
        """Receive the notifications of `projections` for as long as the block runs."""
        listener = Listener(frozenset(projections), maxsize)
        await self._add(listener)
        try:
            yield listener
        finally:
            await self._remove(listener)

    async def close(self) -> None:
        for listener in list(self._listeners):
            listener.drop("the server is shutting down")
        async with self._lock:
            self._listeners.clear()
            self._changed()
            await self._unsubscribe()

    async def _add(self, listener: Listener) -> None:
        async with self._lock:
            if self._pubsub is None:
                pubsub = self._redis.pubsub()
                try:
                    await pubsub.subscribe(self._channel)
                except Exception:
                    await _close(pubsub)
                    raise
                self._pubsub = pubsub
                self._reader = asyncio.create_task(self._read(pubsub), name="projection-hub")
            self._listeners.add(listener)
            self._changed()

    async def _remove(self, listener: Listener) -> None:
        async with self._lock:
            self._listeners.discard(listener)
            self._changed()
            if not self._listeners:
                await self._unsubscribe()

    def _changed(self) -> None:
        self._on_listener_count(self.listener_count)
        self._listeners_changed.set()
        self._listeners_changed = asyncio.Event()

    async def _unsubscribe(self) -> None:
        reader, pubsub = self._reader, self._pubsub
        self._reader = self._pubsub = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe(self._channel)
            await _close(pubsub)

    async def _read(self, pubsub: PubSub) -> None:
        try:
            while True:
                # A bounded wait, not listen(): a quiet channel is not a lost one, whatever
                # socket timeout the shared Redis client was given.
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=READ_POLL_S
                )
                if message is None or message["type"] != "message":
                    continue
                notification = Notification.decode(message["data"])
                for listener in list(self._listeners):
                    listener.offer(notification)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("projection notifications lost: %s", exc)
            # Listeners end (subscriptions close, waiters fall back); the next one resubscribes.
            self._pubsub = self._reader = None
            for listener in list(self._listeners):
                listener.drop("the notification channel was lost")
            await _close(pubsub)


async def _close(pubsub: PubSub) -> None:
    # redis-py leaves PubSub.aclose unannotated; it returns nothing.
    await pubsub.aclose()  # type: ignore[no-untyped-call]
