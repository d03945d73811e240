"""B6: the API process's memory under mixed load, and a sampler other rows use too.

One `shop serve` and one `shop worker`; the load generator (its own process) cycles
order(id), myOrders, products and placeOrder requests as the seeded customers, while
websocket subscribers (bench.subscribers, another process) follow those customers'
orders. Three rounds back to back against the same API process; its RSS is sampled
throughout. A leak shows as growth from the end of round 1 (everything warmed up) to
the end of round 3; the ceiling is the largest sample.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import orjson
import psutil
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from app.bootstrap import build_mongo
from app.settings import Settings
from bench.event_log import head_position
from bench.plan import Plan
from bench.report import Row
from bench.seed import Account, Seeder
from bench.stack import load, rss_mb, stack
from bench.stats import spread
from bench.subscribers import SubscriberProcess, subscribers
from reads.projection_state import STATE
from workers.notifications import projections_channel
from workers.projectors import PROJECTORS
from workers.state import load_state

Document = dict[str, Any]
ROUNDS = 3
RSS_EVERY_S = 0.5
RSS_LIMIT_MB = 200.0
GROWTH_LIMIT = 0.10
PROJECTED_BUDGET_S = 180.0
DELIVERY_BUDGET_S = 30.0

ORDER = "query($id: ID!) { order(id: $id) { id status totalCents lines { sku quantity } } }"
MY_ORDERS = """query { myOrders(first: 10) {
  edges { node { id status totalCents placedAt } } pageInfo { hasNextPage endCursor } } }"""
PRODUCTS = "query { products(first: 20) { edges { node { id name priceCents stock } } } }"
PLACE_ORDER = """mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
  __typename ... on OrderSuccess { consistencyToken order { id } }
  ... on UserError { code message } } }"""


class RssSampler:
    """Samples a process's resident memory (with its children) while the block runs.

    A tick waits on the stop event, so leaving the block ends the sampling at once.
    """

    def __init__(self, pid: int, every_s: float) -> None:
        self.pid = pid
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def max_mb(self) -> float:
        return max(self.samples, default=0.0)

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _sample(self) -> None:
        while True:
            try:
                self.samples.append(rss_mb(self.pid))
            except psutil.NoSuchProcess:  # it exited (a zombie counts as gone)
                return
            try:
                await asyncio.wait_for(self._stop.wait(), self.every_s)
                return
            except TimeoutError:
                pass


@dataclass(frozen=True)
class Shop:
    """What the load talks about: customers with a few orders each, and products."""

    customers: list[Account]
    products: list[str]
    orders: dict[str, list[str]]


@dataclass
class Round:
    end_mb: float
    load: dict[str, Any]
    messages: int


@dataclass
class Sizes:
    subscribers: int
    customers: int
    products: int
    orders_each: int
    concurrency: int
    round_s: float

    @classmethod
    def of(cls, plan: Plan) -> Sizes:
        return cls(
            subscribers=plan.size(200, 5), customers=plan.size(40, 3), products=plan.size(30, 6),
            orders_each=plan.size(3, 1), concurrency=plan.size(8, 2),
            round_s=plan.size(200, 2),
        )  # fmt: skip


@dataclass
class Outcome:
    idle_mb: float
    rounds: list[Round] = field(default_factory=list)
    max_mb: float = 0.0
    worker_max_mb: float = 0.0
    expected_messages: int = 0
    # The subscribers' tally before they disconnect themselves.
    delivered: dict[str, Any] = field(default_factory=dict)


async def run(settings: Settings, plan: Plan) -> Row:
    sizes = Sizes.of(plan)
    assert settings.redis_url is not None
    mongo = build_mongo(settings, patient=True)
    redis = Redis.from_url(settings.redis_url)
    db = mongo[settings.mongodb_database]
    try:
        async with stack(settings) as running:
            # Seeding needs neither process: all three start together on the two cores.
            (port, api), worker, shop = await asyncio.gather(
                running.api(), running.worker(), _seed(settings, sizes)
            )
            await _wait_projected(settings, db, redis)
            outcome = Outcome(idle_mb=rss_mb(api.pid))
            seeded = await _orders_by_customer(db)
            tokens = [account.token for account in shop.customers]
            async with (
                subscribers(port, tokens, sizes.subscribers) as subs,
                RssSampler(api.pid, RSS_EVERY_S) as api_rss,
                RssSampler(worker.pid, RSS_EVERY_S) as worker_rss,
            ):
                spec = _load_spec(port, shop, sizes)
                for _ in range(ROUNDS):
                    outcome.rounds.append(await _round(spec, api.pid, subs, outcome))
                await _wait_projected(settings, db, redis)
                outcome.expected_messages = _expected(
                    seeded, await _orders_by_customer(db), shop, sizes.subscribers
                )
                outcome.delivered = await subs.tally_once(
                    outcome.expected_messages, DELIVERY_BUDGET_S
                )
                await subs.finish()
            outcome.max_mb, outcome.worker_max_mb = api_rss.max_mb, worker_rss.max_mb
    finally:
        await redis.aclose()
        await mongo.close()
    return _row(outcome, sizes)


async def _seed(settings: Settings, sizes: Sizes) -> Shop:
    """Customers signed up concurrently (argon2 takes a while), each with a few orders."""
    seeder = Seeder(settings)
    try:
        products = await seeder.products(sizes.products)
        customers = list(await asyncio.gather(*(seeder.customer() for _ in range(sizes.customers))))
        orders: dict[str, list[str]] = {}
        for n, account in enumerate(customers):
            for k in range(sizes.orders_each):
                placed = await seeder.place(account, products, lines=3, offset=n + k)
                orders.setdefault(account.id, []).append(str(placed.value.id))
    finally:
        await seeder.close()
    return Shop(customers, products, orders)


async def _wait_projected(settings: Settings, db: AsyncDatabase[Document], redis: Redis) -> None:
    """Wait, on batch notifications, until every projection reached the log's head."""
    assert settings.database_url is not None
    head = await head_position(settings.database_url)
    deadline = time.monotonic() + PROJECTED_BUDGET_S
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(projections_channel(settings.redis_prefix))
        while True:
            positions = {doc["_id"]: doc["position"] async for doc in db[STATE].find()}
            if all(positions.get(name, 0) >= head for name in PROJECTORS):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"projections at {positions}, wanted {head}")
            # A message means a batch committed; the timeout re-reads in case one was missed.
            await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 1.0))


def _request(query: str, variables: dict[str, Any], account: Account | None) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/graphql",
        "body": orjson.dumps({"query": query, "variables": variables}).decode(),
        "headers": account.headers if account else {},
    }


def _load_spec(port: int, shop: Shop, sizes: Sizes) -> dict[str, Any]:
    """Each customer in turn: their first order, their order list, the catalog, and a
    new three-line order (one request in four writes)."""
    requests = []
    for n, account in enumerate(shop.customers):
        lines = [{"productId": shop.products[(n + k) % len(shop.products)], "quantity": 1}
                 for k in range(3)]  # fmt: skip
        requests += [
            _request(ORDER, {"id": shop.orders[account.id][0]}, account),
            _request(MY_ORDERS, {}, account),
            _request(PRODUCTS, {}, None),
            _request(PLACE_ORDER, {"input": {"lines": lines}}, account),
        ]
    return {
        "host": "127.0.0.1", "port": port, "concurrency": sizes.concurrency,
        "duration_s": sizes.round_s, "warmup_s": 0.0, "check": "graphql",
        "requests": requests,
    }  # fmt: skip


async def _round(
    spec: dict[str, Any], api_pid: int, subs: SubscriberProcess, outcome: Outcome
) -> Round:
    result = await load(spec)
    end_mb = rss_mb(api_pid)
    received = (await subs.tally())["messages"]
    before = sum(r.messages for r in outcome.rounds)
    return Round(end_mb, result, received - before)


async def _orders_by_customer(db: AsyncDatabase[Document]) -> dict[str, int]:
    orders = (await load_state(db, "orders")).collections["orders"]
    grouped = db[orders].aggregate([{"$group": {"_id": "$customer.id", "n": {"$sum": 1}}}])
    return {doc["_id"]: doc["n"] async for doc in await grouped}


def _expected(before: dict[str, int], after: dict[str, int], shop: Shop, count: int) -> int:
    """One message per order placed under load, to each subscriber of its customer."""
    subscribed: dict[str, int] = {}
    for i in range(count):
        customer = shop.customers[i % len(shop.customers)].id
        subscribed[customer] = subscribed.get(customer, 0) + 1
    return sum((after.get(c, 0) - before.get(c, 0)) * n for c, n in subscribed.items())


def _row(outcome: Outcome, sizes: Sizes) -> Row:
    ends = [r.end_mb for r in outcome.rounds]
    growth = (ends[-1] - ends[0]) / ends[0]
    met = outcome.max_mb <= RSS_LIMIT_MB and growth <= GROWTH_LIMIT
    requests = [r.load for r in outcome.rounds]
    delivered = outcome.delivered
    row = Row(
        id="B6",
        what=f"API memory under mixed load with {sizes.subscribers} websocket subscribers",
        baseline="the same API process idle, after start-up and seeding",
        target=f"RSS <= {RSS_LIMIT_MB:.0f} MB; growth round 1 -> {ROUNDS} <= {GROWTH_LIMIT:.0%}",
        figure=f"max {outcome.max_mb:.0f} MB; round ends "
        f"{' / '.join(f'{mb:.0f}' for mb in ends)} MB ({growth:+.1%})",
        baseline_figure=f"{outcome.idle_mb:.0f} MB",
        ratio=f"{outcome.max_mb / outcome.idle_mb:.2f}x idle",
        met=met,
        sizes=_sizes(sizes),
    )
    row.details = [
        ("API RSS at the end of each round, MB", spread(ends).show(1)),
        ("API RSS, max sampled, MB", f"{outcome.max_mb:.1f}"),
        (f"growth, end of round 1 -> end of round {ROUNDS}", f"{growth:+.1%}"),
        ("worker RSS, max sampled, MB", f"{outcome.worker_max_mb:.1f}"),
        ("HTTP requests/s per round", spread([r["rps"] for r in requests]).show(0)),
        ("HTTP p99 latency per round, ms", spread([r["p99_ms"] or 0 for r in requests]).show(1)),
        ("HTTP errors (all rounds)", str(sum(r["errors"] for r in requests))),
        ("subscription messages per round", spread([r.messages for r in outcome.rounds]).show(0)),
        ("subscription messages received / expected",
         f"{delivered['messages']} / {outcome.expected_messages}"),
        ("subscription errors / connections the server closed",
         f"{delivered['errors']} / {delivered['closed']}"),
    ]  # fmt: skip
    row.notes = _notes(requests, delivered)
    return row


def _sizes(sizes: Sizes) -> str:
    return (
        f"{ROUNDS} rounds of {sizes.round_s:.0f} s; {sizes.subscribers} graphql-transport-ws "
        f"subscribers (myOrdersUpdated) over {sizes.customers} customers; HTTP load on "
        f"{sizes.concurrency} connections; {sizes.products} products, "
        f"{sizes.orders_each} seeded order(s) per customer"
    )


def _notes(requests: list[dict[str, Any]], delivered: dict[str, Any]) -> list[str]:
    notes = [
        "The load generator cycles, per customer, order(id) of a seeded order, "
        "myOrders(first: 10), products(first: 20) and placeOrder with three lines: one "
        "request in four is a write. Every placed order is one message to each subscriber "
        "of its customer (expected counts orders in the read model after the load).",
        f"RSS is sampled every {RSS_EVERY_S * 1000:.0f} ms with psutil (process and "
        "children); the round ends are taken as each round's load finishes.",
        "Messages, errors and closed connections are counted once the worker caught up "
        f"and the expected messages arrived (or {DELIVERY_BUDGET_S:.0f} s passed), before "
        "the subscribers disconnect.",
    ]
    samples = [r["error_sample"] for r in requests if r.get("error_sample")]
    if samples:
        notes.append(f"First HTTP error: `{samples[0][:200]}`")
    if delivered.get("error_sample"):
        notes.append(f"First subscription error: `{delivered['error_sample'][:200]}`")
    return notes
