"""B3: placeOrder throughput through the API against its own SQL run raw.

B3 drives `placeOrder` (3 lines) through GraphQL over HTTP from 16 keep-alive clients
against one `shop serve` process; the baseline runs the very statements the handler
sends, raw with asyncpg over 16 connections (bench.raw_writes). Both sides place the
same orders in the same order. No worker runs during B3: both sides measure the write
path alone (the baseline's SQL projects nothing either), and the worker's share is B4's
subject (bench.lag). The shop fixtures here serve both rows.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import orjson
import psutil
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from sqlalchemy import event, text

from app.bootstrap import build_mongo
from app.settings import Settings
from bench import raw_writes
from bench.plan import Plan
from bench.report import Row
from bench.seed import Account, Seeder
from bench.stack import Stack, libpq, load, stack
from bench.stats import spread
from reads.projection_state import STATE
from workers.notifications import projections_channel
from workers.projectors import PROJECTORS
from writes.events import OrderPlaced
from writes.sql import EVENT_LOG_LOCK

CLIENTS = 16
PRODUCTS = 48
LINES = 3
TARGET_RATIO = 0.4
# Ample for the worker to drain a burst's backlog, or a round's, on two busy cores.
SETTLE_BUDGET_S = 60.0

PLACE_ORDER = """mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { __typename
  ... on OrderSuccess { consistencyToken order { id status itemCount totalCents placedAt
    lines { productId quantity lineTotalCents } } }
  ... on UserError { code message } } }"""
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class OrderRequest:
    buyer: Account
    lines: tuple[tuple[str, int], ...]

    def body(self) -> str:
        """The GraphQL request, without an idempotencyKey (optional in the contract), so
        every send is a new order."""
        lines = [{"productId": pid, "quantity": qty} for pid, qty in self.lines]
        query = {"query": PLACE_ORDER, "variables": {"input": {"lines": lines}}}
        return orjson.dumps(query).decode()

    def http(self) -> dict[str, Any]:
        return {"method": "POST", "path": "/graphql", "body": self.body(),
                "headers": self.buyer.headers}  # fmt: skip

    def raw(self) -> dict[str, Any]:
        return {"customer_id": self.buyer.id, "lines": [list(line) for line in self.lines]}


def order_requests(buyers: list[Account], products: list[str]) -> list[OrderRequest]:
    """Orders that pair buyers with disjoint product triples, so neighbouring clients
    (each starts at its own offset) seldom wait on each other's row locks."""
    triples = len(products) // LINES
    return [
        OrderRequest(
            buyers[n % len(buyers)],
            tuple((products[n % triples * LINES + k], 1 + k) for k in range(LINES)),
        )
        for n in range(math.lcm(len(buyers), triples))
    ]


@dataclass
class Shop:
    """The running stack with its seeded catalogue, and clients to watch it."""

    settings: Settings
    port: int
    seeder: Seeder
    products: list[str]
    redis: Redis
    mongo: AsyncMongoClient[dict[str, Any]]
    # The `shop serve` and `shop worker` processes, for the CPU they spend per order.
    api: psutil.Process
    worker: psutil.Process | None
    stack: Stack
    worker_process: asyncio.subprocess.Process | None = None

    async def stop_worker(self) -> None:
        """Stop `shop worker` (its leases are released on the way out)."""
        if self.worker_process is not None:
            await self.stack.stop(self.worker_process)
        self.worker_process, self.worker = None, None

    async def start_worker(self) -> None:
        self.worker_process = await self.stack.worker()
        self.worker = psutil.Process(self.worker_process.pid)

    async def buyers(self, count: int) -> list[Account]:
        return list(await asyncio.gather(*(self.seeder.customer() for _ in range(count))))

    async def head(self) -> int:
        async with self.seeder.engine.connect() as conn:
            head = await conn.scalar(text("SELECT coalesce(max(position), 0) FROM event_log"))
        return int(head or 0)

    async def caught_up(self) -> None:
        """Wait (on batch notifications) until every projection reached the log's head, so
        a measurement never starts with the worker still busy on the one before."""
        if self.worker is None:
            return
        head = await self.head()
        deadline = time.monotonic() + SETTLE_BUDGET_S
        db = self.mongo[self.settings.mongodb_database]
        async with self.redis.pubsub() as pubsub:
            await pubsub.subscribe(projections_channel(self.settings.redis_prefix))
            while True:
                positions = {doc["_id"]: doc["position"] async for doc in db[STATE].find()}
                if all(positions.get(name, 0) >= head for name in PROJECTORS):
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"projections at {positions}, the log at {head}")
                # The timeout re-reads the positions in case a notification was missed.
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)

    async def preflight(self, requests: list[OrderRequest]) -> None:
        """Place each distinct order once: the load generator only sees top-level errors,
        so a refusal in the result union (a ValidationError, say) must be ruled out here."""
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as http:
            for request in requests:
                sent = await http.post("/graphql", content=request.body(),
                                       headers=request.buyer.headers | JSON)  # fmt: skip
                if placed_id(sent.content) is None:
                    raise RuntimeError(f"placeOrder failed: {sent.status_code} {sent.text}")


def placed_id(response: bytes) -> str | None:
    """The new order's id from a placeOrder response; None unless it is an OrderSuccess."""
    body = orjson.loads(response)
    result = (body.get("data") or {}).get("placeOrder") or {}
    if result.get("__typename") != "OrderSuccess":
        return None
    order_id: str = result["order"]["id"]
    return order_id


@asynccontextmanager
async def shop(settings: Settings, *, worker: bool = True) -> AsyncIterator[Shop]:
    """`shop serve` (and `shop worker`) on this row's stores, with products of huge stock."""
    assert settings.redis_url is not None
    seeder = Seeder(settings)
    redis = Redis.from_url(settings.redis_url)
    mongo = build_mongo(settings, patient=True)
    try:
        async with stack(settings) as running:
            port, api = await running.api()
            projecting = await running.worker() if worker else None
            products = await seeder.products(PRODUCTS)
            yield Shop(
                settings, port, seeder, products, redis, mongo, psutil.Process(api.pid),
                psutil.Process(projecting.pid) if projecting else None, running, projecting,
            )  # fmt: skip
    finally:
        await mongo.close()
        await redis.aclose()
        await seeder.close()


def graphql_load(port: int, requests: list[OrderRequest], warmup_s: float, seconds: float
                 ) -> dict[str, Any]:  # fmt: skip
    return {"host": "127.0.0.1", "port": port, "concurrency": CLIENTS, "warmup_s": warmup_s,
            "duration_s": seconds, "check": "graphql",
            "requests": [request.http() for request in requests]}  # fmt: skip


def raw_load(settings: Settings, requests: list[OrderRequest], plan: Plan) -> dict[str, Any]:
    assert settings.database_url is not None
    return {"dsn": libpq(settings.database_url), "concurrency": CLIENTS,
            "warmup_s": plan.warmup_s, "duration_s": plan.round_s,
            "event_log_lock": EVENT_LOG_LOCK, "schema_version": OrderPlaced.schema_version,
            "orders": [request.raw() for request in requests]}  # fmt: skip


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def measured(running: Shop, run: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """`run`'s result, with the CPU the API spent per order placed."""
    head, api = await running.head(), cpu_s(running.api)
    result = await run()
    if not result["requests"]:
        raise RuntimeError(f"no order completed in the measurement: {result['error_sample']}")
    placed = await running.head() - head
    result["api_cpu_ms"] = (cpu_s(running.api) - api) * 1000 / placed
    result["client_cpu_ms"] = result.get("cpu_s", math.nan) * 1000 / placed
    return result


# Transaction control and the pool's liveness check, which the baseline sends too
# (asyncpg's transaction()) or needs not, and asyncpg's own type introspection (once per
# connection and type, on both sides): only the command's own statements compare.
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", ";", "SELECT 1")
_INTROSPECTION = ("typeinfo_tree", "set_config('jit'")


def _own_statement(query: str) -> bool:
    plain = query.strip()
    return not plain.upper().startswith(_CONTROL) and not any(
        marker in plain for marker in _INTROSPECTION
    )


async def check_statements(running: Shop, request: OrderRequest) -> None:
    """Stop unless the handler still sends exactly the baseline's statements.

    One order through the command bus (the API's handler, in this process), with every
    statement its asyncpg connections run captured by asyncpg's query logger.
    """
    sent: list[str] = []

    def capture(record: Any) -> None:
        if _own_statement(record.query):
            sent.append(record.query)

    def watch(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(capture)

    def unwatch(dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None:
            dbapi_connection.driver_connection.remove_query_logger(capture)

    pool = running.seeder.engine.sync_engine.pool
    event.listen(pool, "checkout", watch)
    event.listen(pool, "checkin", unwatch)
    try:
        await running.seeder.place_lines(request.buyer, request.lines)
    finally:
        event.remove(pool, "checkout", watch)
        event.remove(pool, "checkin", unwatch)
    if tuple(sent) != raw_writes.STATEMENTS:
        raise RuntimeError(
            "placeOrder's SQL changed: update bench/raw_writes.py to match:\n" + "\n".join(sent)
        )


async def run_throughput(settings: Settings, plan: Plan) -> Row:
    """B3: orders per second through the API against the same SQL run raw."""
    api_runs: list[dict[str, Any]] = []
    raw_runs: list[dict[str, Any]] = []
    async with shop(settings, worker=False) as running:
        buyers = await running.buyers(plan.size(CLIENTS, 4))
        requests = order_requests(buyers, running.products)
        await check_statements(running, requests[0])
        await running.preflight(requests)
        raw = partial(load, raw_load(settings, requests, plan), "bench.raw_writes")
        api = partial(load, graphql_load(running.port, requests, plan.warmup_s, plan.round_s))
        for _ in range(plan.rounds):
            raw_runs.append(await measured(running, raw))
            api_runs.append(await measured(running, api))
    return throughput_row(plan, api_runs, raw_runs)


def cpu_spread(runs: list[dict[str, Any]], key: str) -> str:
    return spread([run[key] for run in runs]).show(2)


def throughput_row(plan: Plan, api: list[dict[str, Any]], raw: list[dict[str, Any]]) -> Row:
    ratios = [a["rps"] / r["rps"] for a, r in zip(api, raw, strict=True)]
    errors = sum(run["errors"] for run in api + raw)
    row = Row(
        "B3", f"placeOrder ({LINES} lines), {CLIENTS} clients, over GraphQL/HTTP",
        "the same SQL raw with asyncpg", f">= {TARGET_RATIO}x baseline orders/s, no errors",
        figure=f"{spread([run['rps'] for run in api]).show(0)} orders/s",
        baseline_figure=f"{spread([run['rps'] for run in raw]).show(0)} orders/s",
        ratio=f"{spread(ratios).show(2)}x",
        met=spread(ratios).median >= TARGET_RATIO and errors == 0,
        sizes=f"{CLIENTS} clients (keep-alive connections / asyncpg connections), {LINES} lines "
        f"per order over {PRODUCTS} products, {plan.rounds} rounds of "
        f"{plan.warmup_s:g} s warm-up + {plan.round_s:g} s",
    )  # fmt: skip
    for side, runs in (("API", api), ("baseline", raw)):
        row.details += [
            (f"{side} p50 latency (ms)", spread([run["p50_ms"] for run in runs]).show()),
            (f"{side} p99 latency (ms)", spread([run["p99_ms"] for run in runs]).show()),
            (f"{side} errors (all rounds)", str(sum(run["errors"] for run in runs))),
        ]
    row.details += [
        ("CPU per order, `shop serve` (ms)", cpu_spread(api, "api_cpu_ms")),
        ("CPU per order, the raw client (ms)", cpu_spread(raw, "client_cpu_ms")),
    ]
    row.notes += [
        "- No worker ran during B3, on either side: it measures the write path alone (the "
        "API still nudges Redis after each commit, as it does in production). The worker's "
        "cost per order and its lag are B4's subject.",
        "- The baseline runs, per order: BEGIN; SELECT the customer; SELECT the products "
        "... = ANY($1) ORDER BY id FOR UPDATE; UPDATE the products over unnest(); INSERT the "
        "order; INSERT the lines over unnest(); SELECT pg_advisory_xact_lock; INSERT the "
        "OrderPlaced event RETURNING position; COMMIT: 9 round trips, the very statements "
        "the handler sends (writes/sql.py; captured and compared before the run). The API "
        "adds HTTP, GraphQL, the JWT, the session, the pool's checkout and the Redis nudge.",
        "- No idempotencyKey is sent (optional in the contract), so every request is a new "
        "order; each distinct request was placed once first, to rule out refusals in the "
        "result union, which the load generator cannot see.",
    ]
    row.notes += [f"- Error sample: {run['error_sample']}" for run in api + raw if run["errors"]]
    return row
