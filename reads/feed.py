"""The update streams subscriptions read: changed documents, from projection notifications.

Each stream is named for what it follows (one order, a customer's orders, one or every
product, the sales batches) and takes ids and an `after` position, so callers never
see a MongoDB filter or a collection name. A stream listens first, then replays what
changed after its `after` position (documents carry the position that last changed
them), then goes live; a document is never sent twice for the same position, so there
is no gap and no duplicate. Each notification's documents are fetched once per process,
however many subscribers want them. A MongoDB outage ends a stream with
ReadModelUnavailable.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from typing import Any, cast

from reads.documents import ORDERS, PRODUCTS, OrderDocument, ProductDocument
from reads.hub import Notification, ProjectionHub
from reads.read_model import ReadModel, unavailable_on_outage

Document = dict[str, Any]
FETCH_CACHE = 64


class ChangeFeed:
    def __init__(self, hub: ProjectionHub, read_model: ReadModel) -> None:
        self.hub = hub
        self.read_model = read_model
        self._fetched: OrderedDict[tuple[str, str, int], asyncio.Future[list[Document]]] = (
            OrderedDict()
        )

    def order(self, order_id: str) -> AsyncGenerator[OrderDocument, None]:
        """One order as it changes, from now on (whoever may see it: the caller decides)."""
        order_id = order_id.lower()
        changes = self._changes(
            ORDERS,
            where={"_id": order_id},
            match=lambda doc: doc["_id"] == order_id,
            after=None,
            ids=frozenset({order_id}),
        )
        return cast("AsyncGenerator[OrderDocument, None]", changes)

    def customer_orders(
        self, customer_id: str, *, after: int | None
    ) -> AsyncGenerator[OrderDocument, None]:
        """A customer's orders as they are placed and change; those changed after `after`
        first, when given."""
        changes = self._changes(
            ORDERS,
            where={"customer.id": customer_id},
            match=lambda doc: doc["customer"]["id"] == customer_id,
            after=after,
        )
        return cast("AsyncGenerator[OrderDocument, None]", changes)

    def products(
        self, product_id: str | None, *, after: int | None
    ) -> AsyncGenerator[ProductDocument, None]:
        """One product (every product, for None) as it changes; those changed after
        `after` first, when given."""
        one = None if product_id is None else product_id.lower()
        changes = self._changes(
            PRODUCTS,
            where={} if one is None else {"_id": one},
            match=lambda doc: one is None or doc["_id"] == one,
            after=after,
            ids=None if one is None else frozenset({one}),
        )
        return cast("AsyncGenerator[ProductDocument, None]", changes)

    def sales_batches(self) -> AsyncGenerator[Notification, None]:
        """Every batch the sales projection commits: the dashboard changed."""
        return self.notices(["sales"])

    async def notices(self, projections: list[str]) -> AsyncGenerator[Notification, None]:
        """Every batch notification of `projections`."""
        async with self.hub.listen(projections) as listener:
            while True:
                yield await listener.next()

    async def _changes(
        self,
        logical: str,
        *,
        where: dict[str, Any],
        match: Callable[[Document], bool],
        after: int | None,
        ids: frozenset[str] | None = None,
    ) -> AsyncGenerator[Document, None]:
        """Documents of `logical` (the projection of the same name) that `match`, as they
        change; `where` is the same test as a MongoDB filter (for the replay), `ids`
        narrows to known documents."""
        projection = logical
        with unavailable_on_outage():
            async with self.hub.listen([projection]) as listener:
                sent: dict[str, int] = {}
                # Without `after`, what the projection held when we started listening is
                # not news: a notice of an older batch can still be on its way.
                baseline = (
                    (await self.read_model.positions((projection,)))[projection]
                    if after is None
                    else after
                )
                if after is not None:
                    collection = await self.read_model.collection(projection, logical)
                    replay = {**where, "position": {"$gt": after}}
                    async for doc in collection.find(replay).sort("position", 1):
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
