"""B4: projection lag under sustained placeOrder load, at half of B3's rate.

Paces orders at half the rate a 16-client burst reaches through the API (measured first,
with the worker running) and times each one from its mutation's response (the commit) to
the worker's batch notification naming it (visible) and to its arrival at a websocket
subscriber (pushed).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis
from sqlalchemy import text

from app.settings import Settings
from bench.plan import Plan
from bench.report import Row
from bench.seed import Account
from bench.stack import load
from bench.stats import percentile, spread
from bench.writes import (
    CLIENTS,
    JSON,
    LINES,
    PRODUCTS,
    SETTLE_BUDGET_S,
    OrderRequest,
    Shop,
    graphql_load,
    order_requests,
    placed_id,
    shop,
)
from bench.ws_client import subscriber
from workers.notifications import projections_channel

SUBSCRIBERS = 4
VISIBLE_P50_MS, VISIBLE_P99_MS, PUSHED_P99_MS = 15.0, 75.0, 100.0
MY_ORDERS_UPDATED = "subscription { myOrdersUpdated { id status version } }"


@dataclass
class Arrivals:
    """When each order committed (its response arrived), became visible, and was pushed.

    All are wall-clock (epoch) seconds on this one host: commits by PostgreSQL's clock,
    arrivals by this process's."""

    committed: dict[str, float] = field(default_factory=dict)
    visible: dict[str, float] = field(default_factory=dict)
    pushed: dict[str, float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def saw(self, moments: dict[str, float], ids: list[str], at: float) -> None:
        for order_id in ids:
            moments.setdefault(order_id, at)
        self.changed.set()

    def complete(self, ids: list[str]) -> bool:
        return all(order_id in self.visible and order_id in self.pushed for order_id in ids)

    async def settle(self, ids: list[str]) -> None:
        """Wait until every order was announced and pushed, or the budget ran out (the
        row then reports the missing ones)."""
        deadline = time.monotonic() + SETTLE_BUDGET_S
        while not self.complete(ids) and (left := deadline - time.monotonic()) > 0:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    def lags_ms(self, moments: dict[str, float], ids: list[str]) -> list[float]:
        return [(moments[i] - self.committed[i]) * 1000 for i in ids if i in moments]


async def watch_batches(redis: Redis, prefix: str, arrivals: Arrivals) -> asyncio.Task[None]:
    """Listen for the worker's batch notifications from now on (the subscription is
    confirmed before this returns, so no batch after it is missed)."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(projections_channel(prefix))
    while (await pubsub.get_message(timeout=SETTLE_BUDGET_S) or {}).get("type") != "subscribe":
        pass

    async def listen() -> None:
        async with pubsub:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                at = time.time()
                body = orjson.loads(message["data"])
                if body["projection"] == "orders":
                    arrivals.saw(arrivals.visible, body["ids"], at)

    return asyncio.create_task(listen())


async def watch_subscribers(
    port: int, buyers: list[Account], arrivals: Arrivals, exits: contextlib.AsyncExitStack
) -> list[asyncio.Task[None]]:
    """One websocket per buyer, subscribed to its orders; open until `exits` closes."""

    # The client stamps arrivals with perf_counter(); the commit side is wall-clock time.
    wall = time.time() - time.perf_counter()

    def pushed(data: dict[str, Any], at: float) -> None:
        arrivals.saw(arrivals.pushed, [data["myOrdersUpdated"]["id"]], at + wall)

    delivering = []
    for buyer in buyers:
        ws = await exits.enter_async_context(subscriber(port))
        await ws.start(MY_ORDERS_UPDATED, {}, buyer.token)
        delivering.append(asyncio.create_task(ws.deliver(pushed)))
    return delivering


@dataclass(frozen=True)
class Sent:
    at: float
    order_id: str | None
    error: str = ""


async def place(http: httpx.AsyncClient, request: OrderRequest) -> Sent:
    sent = time.perf_counter()
    try:
        response = await http.post("/graphql", content=request.body(),
                                   headers=request.buyer.headers | JSON)  # fmt: skip
        order_id = placed_id(response.content)
    except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
        return Sent(sent, None, f"{type(exc).__name__}: {exc}")
    if order_id is None:
        return Sent(sent, None, response.text[:300])
    return Sent(sent, order_id)


async def commit_times(running: Shop, ids: list[str]) -> dict[str, float]:
    """When each order's event was appended, by PostgreSQL's clock (the same host clock
    as time.time()): moments before its COMMIT, and independent of when the busy bench
    process got round to reading the response."""
    async with running.seeder.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT stream_id::text, extract(epoch FROM recorded_at) FROM event_log "
                "WHERE type = 'OrderPlaced' AND stream_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": ids},
        )
        return {order_id: float(at) for order_id, at in rows}


async def paced_orders(
    port: int, requests: list[OrderRequest], rate: float, seconds: float
) -> list[Sent]:
    """Send orders on a fixed schedule (an open loop: nothing waits for a response)."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=30) as http:  # fmt: skip
        start, placing = time.perf_counter(), []
        for n in range(round(rate * seconds)):
            if (delay := start + n / rate - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            order = place(http, requests[n % len(requests)])
            placing.append(asyncio.create_task(order))
        return list(await asyncio.gather(*placing))


@dataclass(frozen=True)
class RoundLag:
    rate: float
    visible_ms: list[float]
    pushed_ms: list[float]
    errors: int
    missing: int
    error_sample: str

    def p(self, lags: list[float], fraction: float) -> float:
        return percentile(lags, fraction) if lags else math.inf


async def lag_round(
    running: Shop, requests: list[OrderRequest], rate: float, plan: Plan, arrivals: Arrivals
) -> RoundLag:
    started = time.perf_counter()
    total_s = plan.warmup_s + plan.round_s
    sent = await paced_orders(running.port, requests, rate, total_s)
    counted = [s for s in sent if s.at >= started + plan.warmup_s]
    ids = [s.order_id for s in counted if s.order_id is not None]
    arrivals.committed.update(await commit_times(running, ids))
    await arrivals.settle(ids)
    missing = sum(i not in arrivals.visible or i not in arrivals.pushed for i in ids)
    return RoundLag(
        len(counted) / plan.round_s, arrivals.lags_ms(arrivals.visible, ids),
        arrivals.lags_ms(arrivals.pushed, ids), len(counted) - len(ids), missing,
        next((s.error for s in counted if s.error), ""),
    )  # fmt: skip


async def run_lag(settings: Settings, plan: Plan) -> Row:
    """B4: commit -> visible and commit -> pushed, at half of B3's GraphQL rate."""
    async with shop(settings) as running, contextlib.AsyncExitStack() as exits:
        buyers = await running.buyers(SUBSCRIBERS)
        requests = order_requests(buyers, running.products)
        await running.preflight(requests)
        burst = await load(graphql_load(running.port, requests, plan.warmup_s, plan.round_s))
        rate = burst["rps"] / 2
        if not rate:
            raise RuntimeError(f"the burst placed no orders: {burst['error_sample']}")
        await running.caught_up()
        arrivals = Arrivals()
        tasks = [await watch_batches(running.redis, settings.redis_prefix, arrivals)]
        tasks += await watch_subscribers(running.port, buyers, arrivals, exits)
        rounds = []
        try:
            for _ in range(plan.rounds):
                rounds.append(await lag_round(running, requests, rate, plan, arrivals))
                await running.caught_up()
        finally:
            ended = [t for t in tasks if t.done() and not t.cancelled()]
            broken = [repr(t.exception()) for t in ended if t.exception()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return lag_row(plan, burst, rate, rounds, broken)


def lag_row(
    plan: Plan, burst: dict[str, Any], rate: float, rounds: list[RoundLag], broken: list[str]
) -> Row:
    visible_p50 = spread([r.p(r.visible_ms, 0.5) for r in rounds])
    visible_p99 = spread([r.p(r.visible_ms, 0.99) for r in rounds])
    pushed_p50 = spread([r.p(r.pushed_ms, 0.5) for r in rounds])
    pushed_p99 = spread([r.p(r.pushed_ms, 0.99) for r in rounds])
    errors, missing = sum(r.errors for r in rounds), sum(r.missing for r in rounds)
    row = Row(
        "B4", "projection lag under placeOrder at half B3's rate", "none (absolute)",
        f"visible p50 <= {VISIBLE_P50_MS:g} ms, p99 <= {VISIBLE_P99_MS:g} ms; "
        f"pushed p99 <= {PUSHED_P99_MS:g} ms",
        figure=f"visible p50 {visible_p50.show()} ms, p99 {visible_p99.show()} ms; "
        f"pushed p99 {pushed_p99.show()} ms",
        baseline_figure="n/a", ratio="n/a",
        met=visible_p50.median <= VISIBLE_P50_MS and visible_p99.median <= VISIBLE_P99_MS
        and pushed_p99.median <= PUSHED_P99_MS and errors == missing == 0 and not broken,
        sizes=f"{rate:.0f} orders/s (half the {burst['rps']:.0f}/s of a {CLIENTS}-client "
        f"burst), {LINES} lines over {PRODUCTS} products from {SUBSCRIBERS} customers, each "
        f"with a subscriber; {plan.rounds} rounds of {plan.warmup_s:g} s warm-up + "
        f"{plan.round_s:g} s",
    )  # fmt: skip
    row.details = [
        ("orders/s achieved", spread([r.rate for r in rounds]).show()),
        ("commit -> visible p50 (ms)", visible_p50.show()),
        ("commit -> visible p99 (ms)", visible_p99.show()),
        ("commit -> pushed p50 (ms)", pushed_p50.show()),
        ("commit -> pushed p99 (ms)", pushed_p99.show()),
        ("failed mutations / orders never seen (all rounds)", f"{errors} / {missing}"),
    ]
    row.notes = [
        "- Commit is the OrderPlaced event's `recorded_at` (PostgreSQL's clock_timestamp() "
        "at the append, just before COMMIT); visible, when the worker's batch notification "
        "naming the order reached the bench process (Redis pub/sub); pushed, when a "
        "graphql-transport-ws `myOrdersUpdated` message with it did. Both clocks are this "
        "host's wall clock. The bench process paces the mutations over HTTP (httpx) on a "
        "fixed schedule; while it is busy, arrivals are stamped late, which can only make "
        "lags look longer. (Stamping commits when the response arrived gave negative lags "
        "at this rate: notifications overtook responses the busy client had not read yet.)",
        *(
            f"- Round {n}: {r.rate:.0f} orders/s; visible p50 {r.p(r.visible_ms, 0.5):.1f} / "
            f"p99 {r.p(r.visible_ms, 0.99):.1f} ms; pushed p50 {r.p(r.pushed_ms, 0.5):.1f} / "
            f"p99 {r.p(r.pushed_ms, 0.99):.1f} ms; {r.errors} failed, {r.missing} unseen"
            for n, r in enumerate(rounds, start=1)
        ),
    ]
    row.notes += [f"- Error sample: {r.error_sample}" for r in rounds if r.error_sample]
    if burst["errors"]:
        row.notes.append(f"- The burst had {burst['errors']} errors: {burst['error_sample']}")
    row.notes += [f"- A listener failed: {failure}" for failure in broken]
    return row
