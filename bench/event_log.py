"""A realistic event log, written straight into `event_log` (the rebuild benchmark's data).

Through the command bus the log grows by ~150-300 events/s, so 200k events would take
most of an hour. `ShopHistory` builds the same event classes, with the payloads,
metadata and stream versions `UnitOfWork.record` appends, as one consistent history:
orders name customers and products that exist and carry the product's name and price
of the moment, stock never goes negative (a restock comes first), and only placed
orders are shipped or cancelled, so the projectors apply every event without parking.
`check_shapes` holds the generated events against ones the real handlers wrote, so a
change to the events shows up here instead of as a quietly different benchmark.

COPY leaves `position` to the log's identity column, under the append lock: positions
come out consecutive and the sequence stays where the next real append expects it.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from bench.seed import Seeder
from bench.stack import libpq
from writes import commands as c
from writes.clock import iso
from writes.events import (
    CustomerRegistered,
    DomainEvent,
    OrderCancelled,
    OrderCustomerData,
    OrderLineData,
    OrderPlaced,
    OrderShipped,
    ProductCreated,
    ProductPriceChanged,
    ProductRestocked,
    RestockedLine,
)
from writes.unit_of_work import EVENT_LOG_LOCK

# How often each kind of command happens; restocks also happen whenever an order needs one.
MIX = {"place": 70, "ship": 14, "cancel": 7, "sign_up": 4, "price": 3, "restock": 2}
HISTORY_DAYS = 180
COLUMNS = ("event_id", "stream_type", "stream_id", "stream_version", "type", "data", "metadata")
LogRow = tuple[uuid.UUID, str, uuid.UUID, int, str, str, str]


@dataclass(frozen=True)
class Appended:
    """One event as the unit of work records it: the event, its stream and who asked."""

    event: DomainEvent
    stream_id: uuid.UUID
    stream_version: int
    actor: c.Actor | None


@dataclass
class _Product:
    id: uuid.UUID
    sku: str
    name: str
    price_cents: int
    stock: int
    version: int


@dataclass(frozen=True)
class _Customer:
    data: OrderCustomerData
    actor: c.Actor


@dataclass(frozen=True)
class _OpenOrder:
    id: uuid.UUID
    customer: _Customer
    lines: tuple[RestockedLine, ...]
    total_cents: int
    placed_at: str


class ShopHistory:
    """A consistent shop history over HISTORY_DAYS days, event by event, from a seed.

    The catalog and a first set of customers come first; after that every step is a
    command drawn from MIX. Iterating never ends: take as many events as needed.
    """

    def __init__(self, events: int, seed: int = 5) -> None:
        self._rng = random.Random(seed)  # noqa: S311 (repeatable test data, not secrets)
        self._moment = datetime.now(UTC) - timedelta(days=HISTORY_DAYS)
        self._step = timedelta(days=HISTORY_DAYS) / max(events, 1)
        self._catalog_size = max(20, events // 200)
        self._first_customers = max(10, events // 100)
        self._customers: list[_Customer] = []
        self._products: list[_Product] = []
        self._product_by_id: dict[str, _Product] = {}
        self._open: list[_OpenOrder] = []
        self._admin = c.Actor(self.new_id(), c.Role.ADMIN)
        self._steps: dict[str, Callable[[], Iterator[Appended]]] = {
            "place": self._place,
            "ship": self._ship,
            "cancel": self._cancel,
            "sign_up": self._sign_up,
            "price": self._change_price,
            "restock": self._restock_any,
        }

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def __iter__(self) -> Iterator[Appended]:
        yield self._register(self._admin.customer_id, c.Role.ADMIN)
        for _ in range(self._catalog_size):
            yield self._create_product()
        for _ in range(self._first_customers):
            yield from self._sign_up()
        kinds, weights = list(MIX), list(MIX.values())
        while True:
            yield from self._steps[self._rng.choices(kinds, weights)[0]]()

    def _now(self) -> str:
        """The next moment of the history: events are recorded in time order."""
        self._moment += self._step
        return iso(self._moment)

    def _register(self, customer_id: uuid.UUID, role: c.Role) -> Appended:
        n = len(self._customers)
        email, name = f"buyer-{n}-{customer_id.hex[:8]}@bench.example.com", f"Bench Buyer {n}"
        if role is c.Role.CUSTOMER:
            actor = c.Actor(customer_id, role)
            self._customers.append(
                _Customer(OrderCustomerData(str(customer_id), name, email), actor)
            )
        event = CustomerRegistered(str(customer_id), email, name, role.value, self._now())
        return Appended(event, customer_id, 1, None)

    def _sign_up(self) -> Iterator[Appended]:
        yield self._register(self.new_id(), c.Role.CUSTOMER)

    def _create_product(self) -> Appended:
        n = len(self._products)
        product = _Product(
            self.new_id(),
            f"LOG-{n:06d}",
            f"Bench item {n}",
            self._rng.randint(100, 10_000),
            self._rng.randint(50, 500),
            1,
        )
        self._products.append(product)
        self._product_by_id[str(product.id)] = product
        event = ProductCreated(
            str(product.id),
            product.sku,
            product.name,
            f"A benchmark item, number {n}.",
            product.price_cents,
            product.stock,
            self._now(),
        )
        return Appended(event, product.id, 1, self._admin)

    def _restock(self, product: _Product) -> Appended:
        quantity = self._rng.randint(200, 1000)
        product.stock += quantity
        product.version += 1
        event = ProductRestocked(str(product.id), quantity, self._now())
        return Appended(event, product.id, product.version, self._admin)

    def _restock_any(self) -> Iterator[Appended]:
        yield self._restock(self._rng.choice(self._products))

    def _change_price(self) -> Iterator[Appended]:
        product = self._rng.choice(self._products)
        previous = product.price_cents
        product.price_cents = max(1, round(previous * self._rng.uniform(0.8, 1.25)))
        product.version += 1
        event = ProductPriceChanged(str(product.id), previous, product.price_cents, self._now())
        yield Appended(event, product.id, product.version, self._admin)

    def _place(self) -> Iterator[Appended]:
        """An order of 3-5 lines; a product short of stock is restocked just before."""
        customer = self._rng.choice(self._customers)
        chosen = self._rng.sample(self._products, self._rng.randint(3, 5))
        lines = []
        for product in chosen:
            quantity = self._rng.randint(1, 3)
            if product.stock < quantity:
                yield self._restock(product)
            product.stock -= quantity
            lines.append(
                OrderLineData(
                    str(product.id),
                    product.sku,
                    product.name,
                    product.price_cents,
                    quantity,
                    product.price_cents * quantity,
                )
            )
        order_id, placed_at = self.new_id(), self._now()
        total = sum(line.line_total_cents for line in lines)
        returned = tuple(
            RestockedLine(ln.product_id, ln.quantity, ln.line_total_cents) for ln in lines
        )
        self._open.append(_OpenOrder(order_id, customer, returned, total, placed_at))
        event = OrderPlaced(
            str(order_id),
            customer.data,
            tuple(lines),
            sum(ln.quantity for ln in lines),
            total,
            placed_at,
        )
        yield Appended(event, order_id, 1, customer.actor)

    def _take_open_order(self) -> _OpenOrder | None:
        if not self._open:
            return None
        index = self._rng.randrange(len(self._open))
        self._open[index], self._open[-1] = self._open[-1], self._open[index]
        return self._open.pop()

    def _ship(self) -> Iterator[Appended]:
        order = self._take_open_order()
        if order is None:
            yield from self._place()
            return
        event = OrderShipped(str(order.id), order.customer.data.id, self._now())
        yield Appended(event, order.id, 2, self._admin)

    def _cancel(self) -> Iterator[Appended]:
        """The customer cancels: the units go back on the shelf."""
        order = self._take_open_order()
        if order is None:
            yield from self._place()
            return
        for line in order.lines:
            self._product_by_id[line.product_id].stock += line.quantity
        event = OrderCancelled(
            str(order.id),
            order.customer.data.id,
            order.lines,
            order.total_cents,
            order.placed_at,
            self._now(),
        )
        yield Appended(event, order.id, 2, order.customer.actor)


def as_row(appended: Appended, new_id: Callable[[], uuid.UUID]) -> LogRow:
    """The event_log row `UnitOfWork.record` would append (position and defaults aside).

    orjson writes a dataclass as `dataclasses.asdict` would (and so as EVENTS.encode
    does), ten times faster: at 200k events that is the difference between seconds and
    half a minute.
    """
    event, actor = appended.event, appended.actor
    metadata = {
        "correlation_id": f"bench-{new_id().hex}",
        "causation_id": str(new_id()),
        "actor": None
        if actor is None
        else {"id": str(actor.customer_id), "role": actor.role.value},
        "schema_version": event.schema_version,
    }
    return (
        new_id(),
        event.stream_type,
        appended.stream_id,
        appended.stream_version,
        type(event).__name__,
        orjson.dumps(event).decode(),
        orjson.dumps(metadata).decode(),
    )


@dataclass(frozen=True)
class LoadedLog:
    events: int
    head_position: int
    seconds: float
    by_type: dict[str, int]


async def load_history(
    database_url: str,
    events: int,
    seed: int = 5,
    observe: Callable[[LogRow], None] | None = None,
) -> LoadedLog:
    """Append `events` events of a `ShopHistory` with one COPY, under the append lock;
    `observe` sees each row on its way (the log is never held in memory whole)."""
    history = ShopHistory(events, seed)
    by_type: Counter[str] = Counter()

    def rows() -> Iterator[LogRow]:
        for appended in itertools.islice(history, events):
            by_type[type(appended.event).__name__] += 1
            row = as_row(appended, history.new_id)
            if observe is not None:
                observe(row)
            yield row

    conn = await asyncpg.connect(libpq(database_url))
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", EVENT_LOG_LOCK)
            await conn.copy_records_to_table("event_log", records=rows(), columns=COLUMNS)
        seconds = time.perf_counter() - started
        head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_log")
    finally:
        await conn.close()
    return LoadedLog(events, int(head), seconds, dict(by_type))


async def log_size(database_url: str) -> int:
    """How many events the log holds."""
    conn = await asyncpg.connect(libpq(database_url))
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM event_log")
    finally:
        await conn.close()
    return count


async def head_position(database_url: str) -> int:
    """The highest position in the log (0 when empty); failed appends leave gaps below it."""
    conn = await asyncpg.connect(libpq(database_url))
    try:
        head: int = await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_log")
    finally:
        await conn.close()
    return head


async def write_real_sample(seeder: Seeder) -> None:
    """One command of every kind through the real handlers, for `check_shapes`."""
    admin, buyer = await seeder.admin(), await seeder.customer()
    products = await seeder.products(3, stock=100)
    cancelled = await seeder.place(buyer, products, lines=3)
    await seeder.handle(c.CancelOrder(str(cancelled.value.id)), buyer.actor)
    shipped = await seeder.place(buyer, products, lines=2, offset=1)
    await seeder.handle(c.ShipOrder(str(shipped.value.id)), admin.actor)
    await seeder.handle(c.ChangeProductPrice(products[0], 250), admin.actor)
    await seeder.handle(c.RestockProduct(products[1], 40), admin.actor)


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and value types, not the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def check_shapes(database_url: str, generated: Iterable[LogRow]) -> list[str]:
    """Compare generated rows with the log's real ones, type by type; the event types
    checked. Raises if a type differs, or if the log has no real event of a type."""
    conn = await asyncpg.connect(libpq(database_url))
    try:
        real_rows = await conn.fetch(
            "SELECT DISTINCT ON (type) stream_type, type, data::text, metadata::text "
            "FROM event_log ORDER BY type, position"
        )
    finally:
        await conn.close()
    real = {
        row["type"]: _row_shape(row["stream_type"], row["data"], row["metadata"])
        for row in real_rows
    }
    ours: dict[str, Any] = {}
    for row in generated:
        ours.setdefault(row[4], _row_shape(row[1], row[5], row[6]))
    for event_type, generated_shape in ours.items():
        if event_type not in real:
            raise RuntimeError(f"no real {event_type} event to compare with: extend the sample")
        if real[event_type] != generated_shape:
            raise RuntimeError(
                f"generated {event_type} events differ from the handlers' ones:\n"
                f"  real:      {real[event_type]}\n  generated: {generated_shape}"
            )
    return sorted(ours)


def _row_shape(stream_type: str, data: str, metadata: str) -> Any:
    return (stream_type, shape(orjson.loads(data)), shape(orjson.loads(metadata)))


def sample_rows(events: int, seed: int = 5) -> Iterator[LogRow]:
    """The first `events` rows of the history `load_history` writes with the same seed."""
    history = ShopHistory(events, seed)
    for appended in itertools.islice(history, events):
        yield as_row(appended, history.new_id)
