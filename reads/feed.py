"""Changed documents for subscriptions, from projection notifications.

A subscription listens first, then replays what changed after its `after` position
(documents carry the position that last changed them), then goes live; a document is
never sent twice for the same position, so there is no gap and no duplicate. Each
notification's documents are fetched once per process, however many subscribers want them.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

from reads.hub import Notification, ProjectionHub
from reads.read_model import ReadModel

Document = dict[str, Any]
FETCH_CACHE = 64


class ChangeFeed:
    def __init__(self, hub: ProjectionHub, read_model: ReadModel) -> None:
        self.hub = hub
        self.read_model = read_model
        self._fetched: OrderedDict[tuple[str, str, int], asyncio.Future[list[Document]]] = (
            OrderedDict()
        )

    async def documents(
        self,
        projection: str,
        logical: str,
        *,
        query: dict[str, Any],
        match: Callable[[Document], bool],
        after: int | None = None,
        ids: frozenset[str] | None = None,
    ) -> AsyncIterator[Document]:
        """Documents of `logical` that `match`, as they change; `query` is the same filter
        for MongoDB (used by the replay), `ids` narrows to known documents."""
        async with self.hub.listen([projection]) as listener:
            sent: dict[str, int] = {}
            # Without `after`, what the projection held when we started listening is not
            # news: a notice of an older batch can still be on its way.
            baseline = (
                (await self.read_model.positions((projection,)))[projection]
                if after is None
                else after
            )
            if after is not None:
                collection = await self.read_model.collection(projection, logical)
                cursor = collection.find({**query, "position": {"$gt": after}}).sort("position", 1)
                async for doc in cursor:
                    sent[doc["_id"]] = doc["position"]
                    yield doc
            while True:
                notice = await listener.next()
                if notice.rebuilt:
                    self.read_model.forget(projection)
                    continue
                if ids is not None and not ids.intersection(notice.ids):
                    continue
                for doc in await self._fetch(projection, logical, notice):
                    # Nothing at or below the baseline is news to this subscriber.
                    seen = sent.get(doc["_id"], baseline)
                    if not match(doc) or seen >= doc["position"]:
                        continue
                    sent[doc["_id"]] = doc["position"]
                    yield doc

    async def notices(self, projections: list[str]) -> AsyncIterator[Notification]:
        """Every batch notification of `projections`."""
        async with self.hub.listen(projections) as listener:
            while True:
                yield await listener.next()

    async def _fetch(self, projection: str, logical: str, notice: Notification) -> list[Document]:
        key = (projection, logical, notice.position)
        future = self._fetched.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._fetched[key] = future
            while len(self._fetched) > FETCH_CACHE:
                self._fetched.popitem(last=False)
            try:
                collection = await self.read_model.collection(projection, logical)
                docs = [doc async for doc in collection.find({"_id": {"$in": list(notice.ids)}})]
                docs.sort(key=lambda doc: doc["position"])
                future.set_result(docs)
            except Exception as exc:
                future.set_exception(exc)
                self._fetched.pop(key, None)
                raise
        return await asyncio.shield(future)
