"""Generated shop histories, as the event log hands them to projectors.

A history is built from a list of (step, seed) draws: each step picks its ids and
numbers from its seed, among what the history holds so far, so every history is valid
(orders by registered customers over created products, moves of placed orders) except
for the steps that name unknown ids on purpose. Timestamps walk over a few UTC days,
mostly forward, some near midnight and in other time zones.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from workers.log_reader import decode_row
from workers.projection import StoredEvent
from writes.event_codec import EVENTS
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

STEPS = ("register", "create", "place", "place", "place", "cancel", "ship", "price",
         "restock", "unknown")  # fmt: skip
START = datetime(2025, 3, 31, 21, 30, tzinfo=UTC)
ZONES = (UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9)))

steps = st.lists(st.tuples(st.sampled_from(STEPS), st.integers(0, 2**32)), max_size=40)


def stored(
    event: DomainEvent, stream_id: str, version: int, position: int, recorded_at: datetime = START
) -> StoredEvent:
    """`event` as the log hands it to projectors: encoded as the unit of work encodes it,
    its data through JSON (as jsonb returns it), decoded as the log reader decodes it."""
    row = EVENTS.encode(event)
    return StoredEvent(
        position=position,
        stream_type=event.stream_type,
        stream_id=stream_id,
        stream_version=version,
        event=decode_row(row.type, row.schema_version, json.loads(json.dumps(row.data))),
        recorded_at=recorded_at,
    )


@dataclass
class _Order:
    placed: OrderPlaced
    open: bool = True


@dataclass
class History:
    events: list[StoredEvent] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    orders: dict[str, _Order] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    clock: datetime = START

    def append(self, event: DomainEvent, stream_id: str) -> None:
        version = self.versions.get(stream_id, 0) + 1
        self.versions[stream_id] = version
        self.events.append(stored(event, stream_id, version, len(self.events) + 1))

    def now(self, rng: random.Random) -> str:
        # Mostly forward; sometimes a little back, as concurrent commands take their
        # timestamps before they queue for the log.
        self.clock += timedelta(minutes=rng.randint(-20, 300), milliseconds=rng.randint(0, 999))
        return self.clock.astimezone(rng.choice(ZONES)).isoformat(timespec="milliseconds")


def history(draws: list[tuple[str, int]]) -> list[StoredEvent]:
    built = History()
    for index, (step, seed) in enumerate(draws):
        rng = random.Random(seed)
        _STEP[step](built, rng, f"{index:04d}")
    return built.events


def _register(h: History, rng: random.Random, tag: str) -> None:
    customer = f"c-{tag}"
    h.customers.append(customer)
    event = CustomerRegistered(customer, f"{tag}@example.com", f"Customer {tag}",
                               rng.choice(["CUSTOMER", "ADMIN"]), h.now(rng))  # fmt: skip
    h.append(event, customer)


def _create(h: History, rng: random.Random, tag: str) -> None:
    product = f"p-{tag}"
    h.products.append(product)
    event = ProductCreated(product, f"SKU-{tag}", f"Product {tag}", "A thing",
                           rng.randint(1, 5000), rng.randint(0, 5), h.now(rng))  # fmt: skip
    h.append(event, product)


def _place(h: History, rng: random.Random, tag: str, *, unknown: bool = False) -> None:
    if not unknown and not (h.customers and h.products):
        return _register(h, rng, tag) if not h.customers else _create(h, rng, tag)
    customer = rng.choice(h.customers) if h.customers and not unknown else f"nobody-{tag}"
    known = h.products if h.products and not unknown else [f"nothing-{tag}"]
    lines = []
    for _ in range(rng.randint(1, 4)):  # the same product may come twice
        product, quantity, price = rng.choice(known), rng.randint(1, 3), rng.randint(1, 5000)
        lines.append(OrderLineData(product, f"SKU-{product}", f"Name {rng.randint(0, 3)}",
                                   price, quantity, price * quantity))  # fmt: skip
    order = f"o-{tag}"
    placed = OrderPlaced(
        order_id=order,
        customer=OrderCustomerData(customer, f"Customer {customer}", f"{customer}@example.com"),
        lines=tuple(lines),
        item_count=sum(line.quantity for line in lines),
        total_cents=sum(line.line_total_cents for line in lines),
        placed_at=h.now(rng),
    )
    h.orders[order] = _Order(placed)
    h.append(placed, order)
    return None


def _move(h: History, rng: random.Random, cancel: bool) -> None:
    open_orders = [order for order in h.orders.values() if order.open]
    if not open_orders:
        return
    order = rng.choice(open_orders)
    order.open = False
    placed = order.placed
    at = h.now(rng)
    event: DomainEvent
    if cancel:
        restocked = tuple(RestockedLine(line.product_id, line.quantity, line.line_total_cents)
                          for line in placed.lines)  # fmt: skip
        event = OrderCancelled(placed.order_id, placed.customer.id, restocked,
                               placed.total_cents, placed.placed_at, at)  # fmt: skip
    else:
        event = OrderShipped(placed.order_id, placed.customer.id, at)
    h.append(event, placed.order_id)


def _price(h: History, rng: random.Random, tag: str) -> None:
    if h.products:
        product = rng.choice(h.products)
        h.append(ProductPriceChanged(product, 1, rng.randint(1, 5000), h.now(rng)), product)


def _restock(h: History, rng: random.Random, tag: str) -> None:
    if h.products:
        product = rng.choice(h.products)
        h.append(ProductRestocked(product, rng.randint(1, 10), h.now(rng)), product)


def _unknown(h: History, rng: random.Random, tag: str) -> None:
    """An event naming ids the history does not hold (what the projections never saw)."""
    kind = rng.choice(["order", "move", "cancel", "price", "restock"])
    ghost = f"ghost-{tag}"
    if kind == "order":
        _place(h, rng, tag, unknown=True)
    elif kind == "move":
        h.append(OrderShipped(ghost, "nobody", h.now(rng)), ghost)
    elif kind == "cancel":
        lines = (RestockedLine(f"nothing-{tag}", 2, 300),)
        at = h.now(rng)
        h.append(OrderCancelled(ghost, "nobody", lines, 300, at, at), ghost)
    elif kind == "price":
        h.append(ProductPriceChanged(ghost, 1, 2, h.now(rng)), ghost)
    else:
        h.append(ProductRestocked(ghost, 3, h.now(rng)), ghost)


_STEP = {
    "register": _register,
    "create": _create,
    "place": _place,
    "cancel": lambda h, rng, tag: _move(h, rng, cancel=True),
    "ship": lambda h, rng, tag: _move(h, rng, cancel=False),
    "price": _price,
    "restock": _restock,
    "unknown": _unknown,
}
