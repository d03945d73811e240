"""Hot read-model documents kept in the API process, exact by the worker's notifications.

Every committed batch is announced as `{projection, ids, position, after}`: the batch
covers the log from `after` to `position` and changed exactly `ids`. The cache listens on
its own Redis subscription (not the hub's, whose listeners come and go) and, once
subscribed, reads each projection's checkpoint: from then on it knows, per projection, a
position `covered` such that no cached document misses a change at or below it. A
notification whose `after` lies beyond `covered` means one was missed (a publish that
failed, a worker killed between its commit and its publish): the cache empties. So does
a rebuild, and losing the subscription.

A document enters only from a read that began while the cache was subscribed and during
which its projection announced no batch (`ticket`): a read racing a batch cannot store
what the batch just replaced. A read without a consistency token may be served from the cache (it
is as fresh as the last notification); one with a token only when `covered` reaches it.
Entries are keyed by document id (UUIDs, unique across types) with the physical
collection they came from, so a generation swap never serves the old generation's
documents after the API itself switched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import Redis

from reads.hub import Notification

log = logging.getLogger(__name__)

READ_POLL_S = 1.0
RECONNECT_S = 1.0
Document = Mapping[str, Any]
Positions = Callable[[tuple[str, ...]], Awaitable[dict[str, int]]]
# (projection, emptyings so far, that projection's notifications so far) when a read began.
Ticket = tuple[str, int, int]


class NearCache:
    def __init__(
        self,
        redis: Redis,
        channel: str,
        projections: tuple[str, ...],
        positions: Positions,
        max_documents: int,
    ) -> None:
        self._redis = redis
        self._channel = channel
        self._projections = projections
        self._positions = positions
        self._max = max_documents
        self._entries: OrderedDict[str, tuple[str, Document]] = OrderedDict()
        self._covered: dict[str, int] = {}
        self._emptied = 0
        self._announced: dict[str, int] = {}  # notifications so far, by projection
        self._ready = False
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.hits = self.misses = 0  # reads answered, and not, by a ready cache
        self.changed = asyncio.Event()

    @property
    def ready(self) -> bool:
        """Subscribed, with every projection's covered position known."""
        return self._ready

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="near-cache")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._set_ready(False)

    def covered(self, projection: str) -> int | None:
        """The position the cached documents of `projection` are exact up to; None when
        the cache is not ready."""
        return self._covered.get(projection) if self._ready else None

    def get(self, projection: str, collection: str, doc_id: str, at: int | None) -> Document | None:
        """The cached document, when it may answer a read at `at` (None: no token)."""
        if not self._ready:
            return None
        if at is not None and self._covered.get(projection, -1) < at:
            return None
        entry = self._entries.get(doc_id)
        if entry is None or entry[0] != collection:
            self.misses += 1
            return None
        self._entries.move_to_end(doc_id)
        self.hits += 1
        return entry[1]

    async def until_covered(self, projection: str, position: int) -> None:
        """Return once the cache is ready and has heard of `projection` up to `position`:
        what tests wait on, without polling."""
        while (self.covered(projection) or -1) < position:
            await self.changed.wait()

    def __len__(self) -> int:
        return len(self._entries)

    def ticket(self, projection: str) -> Ticket | None:
        """Taken before reading a document of `projection` that may be stored (`put`);
        None while the cache is not ready."""
        if not self._ready:
            return None
        return projection, self._emptied, self._announced.get(projection, 0)

    def put(self, ticket: Ticket | None, collection: str, doc_id: str, document: Document) -> None:
        """Store a document read since `ticket`, unless its projection announced a batch
        (or the cache emptied) in between: the read may have seen the state before it."""
        if ticket is None or ticket != self.ticket(ticket[0]):
            return
        self._entries[doc_id] = (collection, document)
        self._entries.move_to_end(doc_id)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def apply(self, notification: Notification) -> None:
        """One batch's notification: forget what it changed, or everything after a gap."""
        projection = notification.projection
        self._announced[projection] = self._announced.get(projection, 0) + 1
        covered = self._covered.get(projection)
        gap = covered is not None and (notification.after is None or notification.after > covered)
        if notification.rebuilt or gap:
            self._empty()
            if covered is not None:
                self._covered[projection] = max(covered, notification.position)
            self._changed()
            return
        for doc_id in notification.ids:
            self._entries.pop(doc_id, None)
        if covered is not None:
            self._covered[projection] = max(covered, notification.position)
        self._changed()

    def begin(self, covered: Mapping[str, int]) -> None:
        """Ready to serve, subscribed, with the checkpoints read since subscribing."""
        self._empty()
        self._covered = dict(covered)
        self._set_ready(True)

    def _empty(self) -> None:
        self._emptied += 1
        self._entries.clear()

    def _set_ready(self, ready: bool) -> None:
        if not ready:
            self._empty()
            self._covered.clear()
        self._ready = ready
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def _run(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._failing:  # once per outage, not once per attempt
                    log.warning("near cache off until its subscription is back: %s", exc)
                self._failing = True
            finally:
                self._set_ready(False)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RECONNECT_S)

    async def _listen(self, pubsub: Any) -> None:
        confirmed = False
        while True:
            message = await pubsub.get_message(timeout=READ_POLL_S)
            if message is None:
                continue
            if message["type"] == "subscribe" and not confirmed:
                confirmed = True
                # Subscribed first, then the checkpoints: every batch committed after this
                # read is announced to us, every one before it is visible to our reads.
                self.begin(await self._positions(self._projections))
                self._failing = False
            elif message["type"] == "message":
                self.apply(Notification.decode(message["data"]))
