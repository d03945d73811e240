"""What the demo shop holds, decided up front: pure and deterministic, so tests need no services.

The same size always plans the same catalog, customers and baskets (a seeded generator);
only the dates move with the day the plan is made, so the newest orders are recent.
Customers are planned in one sequence, so customer k is the same person in every size.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from app.seed.catalog import CATALOG, FIRST_NAMES, LAST_NAMES, CatalogItem

ADMIN_EMAIL = "demo-admin@example.com"
ADMIN_NAME = "Dana Admin"
# Every demo account has it: the demo is for trying the API out, never for production.
DEMO_PASSWORD = "shop-demo-password"  # noqa: S105
GENERATOR_SEED = "shop-demo"


@dataclass(frozen=True)
class Size:
    customers: int
    orders: int
    days: int


SIZES: dict[str, Size] = {
    "small": Size(customers=25, orders=300, days=90),
    "medium": Size(customers=150, orders=3000, days=180),
    "large": Size(customers=600, orders=12000, days=365),
}


class Fate(StrEnum):
    PLACED = "PLACED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class DemoCustomer:
    email: str
    name: str
    joined_at: datetime


@dataclass(frozen=True)
class DemoOrder:
    # The idempotency key the order is placed with: how a later run recognises it.
    key: str
    customer: int
    lines: tuple[tuple[str, int], ...]  # (sku, quantity)
    placed_at: datetime
    fate: Fate
    settled_at: datetime | None  # when it was shipped or cancelled


@dataclass(frozen=True)
class Plan:
    size: str
    opened_at: datetime
    products: tuple[CatalogItem, ...]
    customers: tuple[DemoCustomer, ...]
    orders: tuple[DemoOrder, ...]
    # Units each product keeps after every planned order: its stock is demand plus these.
    leftover: dict[str, int]

    def demand(self, orders: tuple[DemoOrder, ...] | None = None) -> Counter[str]:
        """Units ordered per sku (cancelled orders too: they held the stock until cancelled)."""
        units: Counter[str] = Counter()
        for order in self.orders if orders is None else orders:
            for sku, quantity in order.lines:
                units[sku] += quantity
        return units


def plan_shop(size_name: str, now: datetime) -> Plan:
    """The demo shop of `size_name` (see SIZES) whose history ends shortly before `now`."""
    size = SIZES[size_name]
    rng = random.Random(f"{GENERATOR_SEED}:{size_name}")  # noqa: S311 (demo data, no secret)
    end = now - timedelta(minutes=5)
    opened_at = (end - timedelta(days=size.days)).replace(hour=9, minute=0, second=0, microsecond=0)
    customers = _customers(size.customers, opened_at, end)
    orders = _orders(rng, size_name, size.orders, customers, opened_at, end)
    leftover = {item.sku: _leftover(rng, item) for item in CATALOG}
    return Plan(size_name, opened_at, CATALOG, customers, orders, leftover)


def _customers(count: int, opened_at: datetime, end: datetime) -> tuple[DemoCustomer, ...]:
    # A generator of its own, so customer k does not depend on the size's other draws.
    rng = random.Random(f"{GENERATOR_SEED}:customers")  # noqa: S311 (demo data, no secret)
    span = end - opened_at
    made: list[DemoCustomer] = []
    taken: set[str] = set()
    for k in range(count):
        first, last = (
            (FIRST_NAMES[0], LAST_NAMES[0])
            if k == 0
            else (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
        )
        email = next(
            candidate
            for n in itertools.count(1)
            if (candidate := _email(first, last, n)) not in taken
        )
        taken.add(email)
        # Sign-ups spread over the first three quarters: the shop keeps gaining customers.
        joined_at = opened_at + span * (0.75 * k / count) - timedelta(days=1)
        made.append(DemoCustomer(email, f"{first} {last}", joined_at))
    return tuple(made)


def _email(first: str, last: str, n: int) -> str:
    suffix = "" if n == 1 else str(n)
    return f"{first}.{last}{suffix}@example.com".lower()


def _orders(
    rng: random.Random,
    size_name: str,
    count: int,
    customers: tuple[DemoCustomer, ...],
    opened_at: datetime,
    end: datetime,
) -> tuple[DemoOrder, ...]:
    span = end - opened_at
    # sqrt: orders grow denser towards today, as a growing shop's do.
    times = sorted(opened_at + span * rng.random() ** 0.5 for _ in range(count))
    joined = [customer.joined_at for customer in customers]
    # A few loyal customers order far more often than the rest.
    loyalty = list(itertools.accumulate(1 / (k + 1) ** 0.7 for k in range(len(customers))))
    popularity = [item.popularity for item in CATALOG]
    orders = []
    for index, placed_at in enumerate(times):
        eligible = max(bisect.bisect_left(joined, placed_at), 1)
        customer = bisect.bisect_right(loyalty, rng.random() * loyalty[eligible - 1])
        line_count = rng.choices((1, 2, 3, 4), weights=(50, 30, 15, 5))[0]
        skus: list[str] = []
        while len(skus) < line_count:
            sku = rng.choices(CATALOG, weights=popularity)[0].sku
            if sku not in skus:
                skus.append(sku)
        lines = tuple((sku, rng.choices((1, 2, 3), weights=(75, 20, 5))[0]) for sku in skus)
        fate, settled_at = _fate(rng, placed_at, end)
        key = f"demo-{size_name}-{index:05d}"
        orders.append(DemoOrder(key, customer, lines, placed_at, fate, settled_at))
    return tuple(orders)


def _fate(rng: random.Random, placed_at: datetime, end: datetime) -> tuple[Fate, datetime | None]:
    """Most orders ship within days, a few are cancelled, the newest are still open."""
    roll = rng.random()
    if roll < 0.07:
        settled_at = placed_at + timedelta(minutes=rng.uniform(10, 24 * 60))
        fate = Fate.CANCELLED
    elif roll < 0.97:
        settled_at = placed_at + timedelta(hours=rng.uniform(3, 96))
        fate = Fate.SHIPPED
    else:
        return Fate.PLACED, None
    if settled_at >= end:
        return Fate.PLACED, None
    return fate, settled_at


def _leftover(rng: random.Random, item: CatalogItem) -> int:
    """Stock left after the history: a few items sold out or running low, most in stock."""
    roll = rng.random()
    if roll < 0.08:
        return 0
    if roll < 0.25:
        return rng.randint(1, 4)
    return rng.randint(12, 150)
