"""What query resolvers call: projection reads with read-your-writes and the fallback,
the node look-up, projection status and the update streams (reads.feed).

Given a consistency position, a read first makes sure the projections it reads have
reached it (waiting briefly on notifications); if they have not, it answers from the
write store through reads.fallback, in the same document shape. Without a position the
projection is served as it is. A position beyond the event log's head is refused before
any wait (PositionNotCommitted), and a search beyond its limits before any read
(BadSearch). When MongoDB is unreachable, by-id reads (node included) and a customer's
order history fall back to the write store; other reads raise ReadModelUnavailable.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reads import customers, fallback, orders, products, sales
from reads.consistency import LogHead, wait_for_position
from reads.documents import CustomerDocument, OrderDocument, ProductDocument
from reads.feed import ChangeFeed
from reads.hub import ProjectionHub
from reads.near_cache import NearCache
from reads.nodes import FoundNode, find_node, written_node
from reads.paging import Page, canonical_id
from reads.products import SearchLimits, check_search
from reads.projection_state import ProjectionStatus
from reads.read_model import ReadModel, ReadModelUnavailable, unavailable_on_outage

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
Document = dict[str, Any]


@dataclass(frozen=True)
class Served:
    """Where a read was answered from, for `extensions.consistency`."""

    source: str  # "projection" | "write_store"
    position: int
    # A projection read that first waited for the projection to reach the token.
    waited: bool = False


def _runs_to_its_end(
    read: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """A read method whose every call runs to its end (`_settled`)."""

    @functools.wraps(read)
    async def settled(*args: P.args, **kwargs: P.kwargs) -> R:
        return await _settled(read(*args, **kwargs))

    return settled


class ReadQueries:
    def __init__(
        self,
        read_model: ReadModel,
        hub: ProjectionHub,
        sessions: async_sessionmaker[AsyncSession],
        wait_s: float,
        search_limits: SearchLimits,
        near_cache: NearCache | None = None,
    ) -> None:
        self.read_model = read_model
        self.near_cache = near_cache
        self.hub = hub
        self.feed = ChangeFeed(hub, read_model)
        self._sessions = sessions
        self._wait_s = wait_s
        self._search_limits = search_limits
        self._head = LogHead(self._log_head)

    async def projection_statuses(self) -> list[ProjectionStatus]:
        """Every projection's status (ReadModel.statuses); its state lives in MongoDB alone, so an
        outage is ReadModelUnavailable."""
        with unavailable_on_outage():
            return await _settled(self.read_model.statuses())

    async def projection_progress(self) -> AsyncGenerator[ProjectionStatus, None]:
        """Each projection's status after every batch it commits; ReadModelUnavailable
        when MongoDB cannot be reached."""
        # Closed with this stream, not whenever the garbage collector gets to it: the
        # listener it holds is what keeps the process subscribed in Redis.
        async with aclosing(self.feed.notices(list(fallback.PROJECTIONS))) as notices:
            async for notice in notices:
                for status in await self.projection_statuses():
                    if status.name == notice.projection:
                        yield status

    async def node(self, node_id: str, at: int | None) -> tuple[FoundNode | None, Served | None]:
        """The order, product or customer `node_id` names, in one read of the projections
        (or of the write store), whoever may see it: the caller decides that."""

        async def projected() -> FoundNode | None:
            return await find_node(
                await self._collection("orders"),
                await self._collection("products"),
                await self._collection("customers"),
                node_id,
            )

        async def written(session: AsyncSession) -> FoundNode | None:
            return await written_node(session, node_id)

        return await self._read(("orders", "products", "customers"), at, projected, written)

    async def order(
        self, order_id: str, at: int | None, fields: Sequence[str] | None = None
    ) -> tuple[OrderDocument | None, Served | None]:
        """The order's document; from the projection, only `fields` of it when given (a
        compiled plan's projection: schema/compiled/); from the write store, whole."""

        hit = await self._cached("orders", order_id, at)
        if hit is not None:
            return cast("OrderDocument", hit[0]), hit[1]

        async def projected() -> OrderDocument | None:
            collection = await self._collection("orders")
            document = await self._find("orders", collection, order_id, fields, orders.order_by_id)
            return cast("OrderDocument | None", document)

        async def written(session: AsyncSession) -> OrderDocument | None:
            return await fallback.order_document(session, order_id)

        return await self._read(("orders",), at, projected, written)

    async def customer_orders(
        self,
        customer_id: str,
        *,
        first: int | None,
        after: str | None,
        status: str | None,
        at: int | None,
        last: int | None = None,
        before: str | None = None,
    ) -> tuple[Page[OrderDocument], Served | None]:
        async def projected() -> Page[OrderDocument]:
            collection = await self._collection("orders")
            page = await orders.customer_orders(
                collection,
                customer_id,
                first=first,
                after=after,
                status=status,
                last=last,
                before=before,
            )
            return cast("Page[OrderDocument]", page)

        async def written(session: AsyncSession) -> Page[OrderDocument]:
            return await fallback.customer_orders(
                session,
                customer_id,
                first=first,
                after=after,
                status=status,
                last=last,
                before=before,
            )

        return await self._read(("orders",), at, projected, written)

    async def count_customer_orders(
        self, customer_id: str, *, status: str | None, at: int | None
    ) -> tuple[int, Served | None]:
        async def projected() -> int:
            collection = await self._collection("orders")
            return await orders.count_customer_orders(collection, customer_id, status=status)

        async def written(session: AsyncSession) -> int:
            return await fallback.count_customer_orders(session, customer_id, status=status)

        return await self._read(("orders",), at, projected, written)

    async def product(
        self, product_id: str, at: int | None, fields: Sequence[str] | None = None
    ) -> tuple[ProductDocument | None, Served | None]:
        """The product's document (only `fields` of it from the projection, as `order`)."""

        hit = await self._cached("products", product_id, at)
        if hit is not None:
            return cast("ProductDocument", hit[0]), hit[1]

        async def projected() -> ProductDocument | None:
            collection = await self._collection("products")
            document = await self._find(
                "products", collection, product_id, fields, products.product_by_id
            )
            return cast("ProductDocument | None", document)

        async def written(session: AsyncSession) -> ProductDocument | None:
            return await fallback.product_document(session, product_id)

        return await self._read(("products",), at, projected, written)

    async def customer(
        self, customer_id: str, at: int | None
    ) -> tuple[CustomerDocument | None, Served | None]:
        async def projected() -> CustomerDocument | None:
            collection = await self._collection("customers")
            document = await customers.customer_by_id(collection, customer_id)
            return cast("CustomerDocument | None", document)

        async def written(session: AsyncSession) -> CustomerDocument | None:
            return await fallback.customer_document(session, customer_id)

        return await self._read(("customers",), at, projected, written)

    async def products(
        self,
        *,
        first: int | None,
        after: str | None,
        search: str | None,
        in_stock: bool | None,
        at: int | None,
        last: int | None = None,
        before: str | None = None,
    ) -> tuple[Page[ProductDocument], Served | None]:
        """BadSearch, before any read, for a search beyond the limits."""
        check_search(search, self._search_limits)

        async def projected() -> Page[ProductDocument]:
            collection = await self._collection("products")
            page = await products.list_products(
                collection,
                first=first,
                after=after,
                search=search,
                in_stock=in_stock,
                last=last,
                before=before,
            )
            return cast("Page[ProductDocument]", page)

        async def written(session: AsyncSession) -> Page[ProductDocument]:
            return await fallback.list_products(
                session,
                first=first,
                after=after,
                search=search,
                in_stock=in_stock,
                last=last,
                before=before,
            )

        return await self._read(("products",), at, projected, written, mongo_required=True)

    async def count_products(
        self, *, search: str | None, in_stock: bool | None, at: int | None
    ) -> tuple[int, Served | None]:
        """BadSearch, before any read, for a search beyond the limits."""
        check_search(search, self._search_limits)

        async def projected() -> int:
            collection = await self._collection("products")
            return await products.count_products(collection, search=search, in_stock=in_stock)

        async def written(session: AsyncSession) -> int:
            return await fallback.count_products(session, search=search, in_stock=in_stock)

        return await self._read(("products",), at, projected, written, mongo_required=True)

    async def low_stock(
        self,
        *,
        below: int,
        first: int | None,
        after: str | None,
        at: int | None,
        last: int | None = None,
        before: str | None = None,
    ) -> tuple[Page[ProductDocument], Served | None]:
        async def projected() -> Page[ProductDocument]:
            collection = await self._collection("products")
            page = await products.low_stock(
                collection, below=below, first=first, after=after, last=last, before=before
            )
            return cast("Page[ProductDocument]", page)

        async def written(session: AsyncSession) -> Page[ProductDocument]:
            return await fallback.low_stock(
                session, below=below, first=first, after=after, last=last, before=before
            )

        return await self._read(("products",), at, projected, written, mongo_required=True)

    async def count_low_stock(self, *, below: int, at: int | None) -> tuple[int, Served | None]:
        async def projected() -> int:
            collection = await self._collection("products")
            return await products.count_low_stock(collection, below=below)

        async def written(session: AsyncSession) -> int:
            return await fallback.count_low_stock(session, below=below)

        return await self._read(("products",), at, projected, written, mongo_required=True)

    async def dashboard(
        self, *, days: int, limit: int, at: int | None
    ) -> tuple[Document, Served | None]:
        async def projected() -> Document:
            return await sales.dashboard(
                await self.read_model.collection("sales", "sales_totals"),
                await self.read_model.collection("sales", "sales_daily"),
                await self.read_model.collection("sales", "sales_products"),
                days=days,
                limit=limit,
            )

        async def written(session: AsyncSession) -> Document:
            return await fallback.dashboard(session, days=days, limit=limit)

        return await self._read(("sales",), at, projected, written, mongo_required=True)

    async def _log_head(self) -> int:
        async with self._sessions() as session:
            return await fallback.log_head(session)

    async def _collection(self, projection: str) -> Any:
        return await self.read_model.collection(projection, projection)

    def _covered(self, projections: tuple[str, ...]) -> int | None:
        """The lowest position the near cache heard `projections` reach; None without one."""
        cache = self.near_cache
        if cache is None:
            return None
        heard = [cache.covered(projection) for projection in projections]
        return None if None in heard else min(h for h in heard if h is not None)

    async def _cached(
        self, projection: str, doc_id: str, at: int | None
    ) -> tuple[Document, Served | None] | None:
        """The near cache's copy of a document, when it may answer this read."""
        cache = self.near_cache
        canonical = canonical_id(doc_id)
        if cache is None or not cache.ready or canonical is None:
            return None
        # No I/O here (nothing a cancellation could interrupt): until the live collection's
        # name is known, the standard read goes first and learns it.
        collection = self.read_model.known_collection(projection, projection)
        if collection is None:
            return None
        document = cache.get(projection, collection.name, canonical, at)
        covered = cache.covered(projection)
        if document is None or covered is None:
            return None
        return dict(document), None if at is None else Served("projection", covered)

    async def _find(
        self,
        projection: str,
        collection: Any,
        doc_id: str,
        fields: Sequence[str] | None,
        find: Callable[[Any, str, Sequence[str] | None], Awaitable[Document | None]],
    ) -> Document | None:
        """One document by id; whole, and kept in the near cache, when there is one."""
        cache = self.near_cache
        if cache is None:
            return await find(collection, doc_id, fields)
        ticket = cache.ticket(projection)
        document = await find(collection, doc_id, None)
        if document is not None:
            cache.put(ticket, collection.name, document["_id"], document)
        return document

    @_runs_to_its_end
    async def _read(
        self,
        projections: tuple[str, ...],
        at: int | None,
        projected: Callable[[], Awaitable[T]],
        written: Callable[[AsyncSession], Awaitable[T]],
        *,
        mongo_required: bool = False,
    ) -> tuple[T, Served | None]:
        """`projected()` when `projections` are fresh enough, else `written()` from the
        write store.

        With MongoDB unreachable a read falls back too, unless `mongo_required`: listings
        and the dashboard are too heavy to serve from the write store under an outage.
        """
        try:
            with unavailable_on_outage():
                if at is None:
                    return await projected(), None
                heard = self._covered(projections)
                if heard is not None and heard >= at:
                    # The near cache heard of batches up to the token: no checkpoint read.
                    return await projected(), Served("projection", heard)
                fresh = await wait_for_position(
                    self.read_model, self.hub, projections, at, self._wait_s, self._head
                )
                if fresh.caught_up:
                    return await projected(), Served("projection", fresh.position, fresh.waited)
        except ReadModelUnavailable:
            if mongo_required:
                raise
            async with self._sessions() as session:
                return await written(session), Served("write_store", 0)
        async with self._sessions() as session:
            return await written(session), Served("write_store", fresh.position)


async def _settled(read: Coroutine[Any, Any, T]) -> T:
    """`read`, run to its end even when its caller is cancelled.

    graphql-core cancels a field's sibling resolvers when a non-null field fails
    (`{ myOrders {...} order(id:) {...} }` sent anonymously), and PyMongo cancelled in the
    middle of an operation leaves its connected socket to the garbage collector. The read
    finishes on its own instead (bounded: one read, or one wait and one read), returning
    its connection to the pool; its answer is dropped (decision 0074).
    """
    task = asyncio.ensure_future(read)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """A shielded read whose caller was cancelled: its outcome is nobody's to report."""
    if not task.cancelled():
        task.exception()
