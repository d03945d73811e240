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
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import psutil
from redis.asyncio import Redis
from sqlalchemy import text

from app.settings import Settings
from bench.plan import Plan
from bench.report import Row
from bench.seed import Account
from bench.stack import load
from bench.stats import Spread, percentile, spread
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
from reads.projection_state import STATE
from workers.notifications import projections_channel
from workers.projectors import PROJECTORS

SUBSCRIBERS = 4
VISIBLE_RATIO, PUSHED_RATIO = 2.0, 3.0
BACKLOG_EVERY_S = 0.25
BACKLOG_DRAIN_S = 5.0
MY_ORDERS_UPDATED = "subscription { myOrdersUpdated { id status version } }"
ALL = ",".join(PROJECTORS)


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
    # CPU (user + system) each process spent per order placed in the round, in ms; the
    # worker's is nan in a raw round (it is stopped).
    api_cpu_ms: float = math.nan
    worker_cpu_ms: float = math.nan

    def p(self, lags: list[float], fraction: float) -> float:
        return percentile(lags, fraction) if lags else math.inf


async def lag_round(
    running: Shop, requests: list[OrderRequest], rate: float, plan: Plan, arrivals: Arrivals
) -> RoundLag:
    started = time.perf_counter()
    total_s = plan.warmup_s + plan.round_s
    worker = running.worker
    cpu_before = cpu_s(running.api), cpu_s(worker)
    sent = await paced_orders(running.port, requests, rate, total_s)
    counted = [s for s in sent if s.at >= started + plan.warmup_s]
    ids = [s.order_id for s in counted if s.order_id is not None]
    arrivals.committed.update(await commit_times(running, ids))
    await arrivals.settle(ids)
    placed = max(sum(s.order_id is not None for s in sent), 1)
    api_ms, worker_ms = (
        (cpu_s(process) - before) * 1000 / placed
        for process, before in zip((running.api, worker), cpu_before, strict=True)
    )
    missing = sum(i not in arrivals.visible or i not in arrivals.pushed for i in ids)
    return RoundLag(
        len(counted) / plan.round_s, arrivals.lags_ms(arrivals.visible, ids),
        arrivals.lags_ms(arrivals.pushed, ids), len(counted) - len(ids), missing,
        next((s.error for s in counted if s.error), ""), api_ms, worker_ms,
    )  # fmt: skip


def cpu_s(process: psutil.Process | None) -> float:
    """CPU seconds (user + system) a process has spent; nan for none."""
    if process is None:
        return math.nan
    times = process.cpu_times()
    return float(times.user + times.system)


async def raw_round(
    running: Shop, requests: list[OrderRequest], rate: float, plan: Plan, arrivals: Arrivals,
    projections: str = ALL,
) -> RoundLag:  # fmt: skip
    """A round projected by bench.raw_projector (`projections` of them) instead of the
    worker, stopped meanwhile; the worker then catches up over the round's events before
    the next round."""
    await running.stop_worker()
    raw = await running.stack.start(
        sys.executable, "-m", "bench.raw_projector", ready=(b"raw projector ready",),
        env={"RAW_PROJECTIONS": projections},
    )  # fmt: skip
    try:
        return await lag_round(running, requests, rate, plan, arrivals)
    finally:
        await running.stack.stop(raw)
        await running.start_worker()
        await running.caught_up()


@dataclass
class Backlog:
    """The log's head minus the slowest projection's checkpoint, sampled."""

    samples: list[int] = field(default_factory=list)
    drained_s: float = math.nan


async def backlog_of(
    running: Shop, during: Awaitable[dict[str, Any]]
) -> tuple[dict[str, Any], Backlog]:
    """Run `during` (a burst) while sampling the backlog; then time its draining."""
    backlog = Backlog()
    db = running.mongo[running.settings.mongodb_database]

    async def sample() -> None:
        while True:
            head = await running.head()
            positions = [doc["position"] async for doc in db[STATE].find({}, {"position": 1})]
            backlog.samples.append(head - min(positions, default=head))
            await asyncio.sleep(BACKLOG_EVERY_S)

    sampler = asyncio.create_task(sample())
    try:
        result = await during
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    ended = time.perf_counter()
    await running.caught_up()
    backlog.drained_s = time.perf_counter() - ended
    return result, backlog


async def run_lag(settings: Settings, plan: Plan) -> Row:
    """B4: commit -> visible and commit -> pushed, at half of B3's GraphQL rate, for the
    worker and for a minimal raw projector in alternating rounds."""
    async with shop(settings) as running, contextlib.AsyncExitStack() as exits:
        buyers = await running.buyers(SUBSCRIBERS)
        requests = order_requests(buyers, running.products)
        await running.preflight(requests)
        await running.caught_up()
        burst, backlog = await backlog_of(
            running, load(graphql_load(running.port, requests, plan.warmup_s, plan.round_s))
        )
        rate = burst["rps"] / 2
        if not rate:
            raise RuntimeError(f"the burst placed no orders: {burst['error_sample']}")
        arrivals = Arrivals()
        tasks = [await watch_batches(running.redis, settings.redis_prefix, arrivals)]
        tasks += await watch_subscribers(running.port, buyers, arrivals, exits)
        rounds, raw_rounds, floor_rounds = [], [], []
        try:
            for _ in range(plan.rounds):
                raw_rounds.append(await raw_round(running, requests, rate, plan, arrivals))
                floor_rounds.append(
                    await raw_round(running, requests, rate, plan, arrivals, "orders")
                )
                rounds.append(await lag_round(running, requests, rate, plan, arrivals))
                await running.caught_up()
        finally:
            ended = [t for t in tasks if t.done() and not t.cancelled()]
            broken = [repr(t.exception()) for t in ended if t.exception()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return lag_row(plan, burst, rate, rounds, raw_rounds, floor_rounds, backlog, broken)


def lag_row(
    plan: Plan, burst: dict[str, Any], rate: float, rounds: list[RoundLag],
    raw_rounds: list[RoundLag], floor_rounds: list[RoundLag], backlog: Backlog,
    broken: list[str],
) -> Row:  # fmt: skip
    def figures(side: list[RoundLag]) -> tuple[Spread, Spread, Spread, Spread]:
        return (spread([r.p(r.visible_ms, 0.5) for r in side]),
                spread([r.p(r.visible_ms, 0.99) for r in side]),
                spread([r.p(r.pushed_ms, 0.5) for r in side]),
                spread([r.p(r.pushed_ms, 0.99) for r in side]))  # fmt: skip

    visible_p50, visible_p99, pushed_p50, pushed_p99 = figures(rounds)
    raw_p50, raw_p99, raw_pushed_p50, raw_pushed_p99 = figures(raw_rounds)
    floor_p50, floor_p99, _, floor_pushed_p99 = figures(floor_rounds)

    def ratio(fraction: float, key: str, side: list[RoundLag], raw: list[RoundLag]) -> Spread:
        pairs = zip(side, raw, strict=True)
        return spread(
            [e.p(getattr(e, key), fraction) / r.p(getattr(r, key), fraction) for e, r in pairs]
        )

    ratios = (ratio(0.5, "visible_ms", rounds, raw_rounds),
              ratio(0.99, "visible_ms", rounds, raw_rounds),
              ratio(0.99, "pushed_ms", rounds, raw_rounds))  # fmt: skip
    everything = rounds + raw_rounds + floor_rounds
    errors = sum(r.errors for r in everything)
    missing = sum(r.missing for r in everything)
    bounded = backlog.drained_s <= BACKLOG_DRAIN_S
    row = Row(
        "B4", "projection lag under placeOrder at half B3's rate",
        "a minimal raw projector (bench/raw_projector.py), alternating rounds",
        f"visible p50 and p99 <= {VISIBLE_RATIO:g}x, pushed p99 <= {PUSHED_RATIO:g}x the "
        f"baseline's; after a full-rate burst the backlog drains within "
        f"{BACKLOG_DRAIN_S:g} s",
        figure=f"visible p50 {visible_p50.show()} ms, p99 {visible_p99.show()} ms; "
        f"pushed p99 {pushed_p99.show()} ms",
        baseline_figure=f"visible p50 {raw_p50.show()} ms, p99 {raw_p99.show()} ms; "
        f"pushed p99 {raw_pushed_p99.show()} ms",
        ratio=f"visible p50 {ratios[0].show(2)}x, p99 {ratios[1].show(2)}x; pushed p99 "
        f"{ratios[2].show(2)}x",
        met=ratios[0].median <= VISIBLE_RATIO and ratios[1].median <= VISIBLE_RATIO
        and ratios[2].median <= PUSHED_RATIO and bounded and errors == missing == 0
        and not broken,
        sizes=f"{rate:.0f} orders/s (half the {burst['rps']:.0f}/s of a {CLIENTS}-client "
        f"burst), {LINES} lines over {PRODUCTS} products from {SUBSCRIBERS} customers, each "
        f"with a subscriber; {plan.rounds} rounds of {plan.warmup_s:g} s warm-up + "
        f"{plan.round_s:g} s on each side",
    )  # fmt: skip
    row.details = [
        ("orders/s achieved, engine / raw",
         f"{spread([r.rate for r in rounds]).show()} / "
         f"{spread([r.rate for r in raw_rounds]).show()}"),
        ("floor, a raw projector of the orders projection alone: commit -> visible p50 / "
         "p99, pushed p99 (ms)",
         f"{floor_p50.show()} / {floor_p99.show()} / {floor_pushed_p99.show()}"),
        ("CPU per order (ms), API / worker, engine rounds",
         f"{spread([r.api_cpu_ms for r in rounds]).show()} / "
         f"{spread([r.worker_cpu_ms for r in rounds]).show()}"),
        ("engine / floor: visible p50, p99, pushed p99",
         " / ".join(f"{ratio(f, k, rounds, floor_rounds).show(2)}x"
                    for f, k in ((0.5, "visible_ms"), (0.99, "visible_ms"),
                                 (0.99, "pushed_ms")))),
        ("commit -> visible p50 (ms), engine / raw", f"{visible_p50.show()} / {raw_p50.show()}"),
        ("commit -> visible p99 (ms), engine / raw", f"{visible_p99.show()} / {raw_p99.show()}"),
        ("commit -> pushed p50 (ms), engine / raw",
         f"{pushed_p50.show()} / {raw_pushed_p50.show()}"),
        ("commit -> pushed p99 (ms), engine / raw",
         f"{pushed_p99.show()} / {raw_pushed_p99.show()}"),
        (f"{CLIENTS}-client burst ({burst['rps']:.0f} orders/s): largest backlog sampled "
         f"(events) / seconds to drain after it",
         f"{max(backlog.samples, default=0)} / {backlog.drained_s:.1f}"),
        ("failed mutations / orders never seen (all rounds)", f"{errors} / {missing}"),
    ]  # fmt: skip
    row.notes = [
        "- Commit is the OrderPlaced event's `recorded_at` (PostgreSQL's clock_timestamp() "
        "at the append, just before COMMIT); visible, when the batch notification naming the "
        "order reached the bench process (Redis pub/sub); pushed, when a "
        "graphql-transport-ws `myOrdersUpdated` message with it did. Both clocks are this "
        "host's wall clock. The bench process paces the mutations over HTTP (httpx) on a "
        "fixed schedule; while it is busy, arrivals are stamped late, which can only make "
        "lags look longer.",
        "- The baseline: bench/raw_projector.py, woken the same way (the commit's pub/sub "
        "nudge, a look every second), folds each event with the same four projectors, one "
        "projection after another, doing one find_one and one replace_one per touched "
        "document with plain PyMongo (no transaction, checkpoint, lease or failure policy) "
        "into copies of the collections, then publishes the same notifications, so the API "
        "pushes as it does for the worker. The worker is stopped during its rounds.",
        "- The floor: the same raw projector running the orders projection alone (one "
        "find_one and one replace_one per order), the least any projector could do for the "
        "document B4 watches; it is reported beside the row, not judged.",
        *(
            f"- Round {n}: engine {r.p(r.visible_ms, 0.5):.1f} / {r.p(r.visible_ms, 0.99):.1f}"
            f" / {r.p(r.pushed_ms, 0.99):.1f} ms, raw {w.p(w.visible_ms, 0.5):.1f} / "
            f"{w.p(w.visible_ms, 0.99):.1f} / {w.p(w.pushed_ms, 0.99):.1f} ms (visible p50 / "
            f"p99 / pushed p99), floor {f.p(f.visible_ms, 0.5):.1f} / "
            f"{f.p(f.visible_ms, 0.99):.1f} / {f.p(f.pushed_ms, 0.99):.1f} ms; "
            f"{r.errors + w.errors + f.errors} failed, {r.missing + w.missing + f.missing} "
            "unseen"
            for n, (r, w, f) in enumerate(
                zip(rounds, raw_rounds, floor_rounds, strict=True), start=1
            )
        ),
    ]
    row.notes += [f"- Error sample: {r.error_sample}" for r in everything
                  if r.error_sample]  # fmt: skip
    if burst["errors"]:
        row.notes.append(f"- The burst had {burst['errors']} errors: {burst['error_sample']}")
    row.notes += [f"- A listener failed: {failure}" for failure in broken]
    return row
