"""B1: `order(id)` through GraphQL against the same MongoDB read behind a bare route.

Both servers run at once, each one uvicorn process as `shop serve` runs, over the same
seeded, projected orders; the load generator alternates between them round by round so
drift on this shared machine weighs on both. The helpers below (seeding orders in
parallel, waiting for the projection, one round's figures) serve B2 as well.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from app.bootstrap import build_mongo
from app.settings import Settings
from bench.plan import Plan
from bench.report import Row
from bench.seed import Account, Seeder
from bench.stack import Stack, free_port, load, stack
from bench.stats import Spread, spread
from reads.read_model import ReadModel
from workers.notifications import projections_channel
from writes.views import Committed

HOST = "127.0.0.1"
CONNECTIONS = 32
LINES = 3
# Orders placed at once while seeding; each gets products of its own (see place_orders).
CHUNK = 16
PROJECTION_BUDGET_S = 300.0

ORDER_FIELDS = """
    id status itemCount totalCents placedAt updatedAt version
    customer { id name }
    lines { productId sku name quantity unitPriceCents lineTotalCents }
"""
ORDER_QUERY = f"query Order($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"


# --- helpers B2 shares -------------------------------------------------------------------


async def place_orders(
    seeder: Seeder, buyers: Sequence[Account], products: list[str], lines: int
) -> list[Committed[Any]]:
    """One order of `lines` lines per entry of `buyers`, placed CHUNK at a time.

    Orders placed together take disjoint products (given CHUNK * lines of them), so they
    never queue on each other's product row locks and seeding stays quick.
    """
    placed: list[Committed[Any]] = []
    for start in range(0, len(buyers), CHUNK):
        batch = buyers[start : start + CHUNK]
        placed += await asyncio.gather(
            *(
                seeder.place(buyer, products, lines, offset=k * lines)
                for k, buyer in enumerate(batch)
            )
        )
    return placed


async def create_products(seeder: Seeder, orders: int, lines: int) -> list[str]:
    """Enough products for CHUNK concurrent orders never to share one, created a few at a
    time in parallel (one by one, a hundred of them take seconds of a smoke run)."""
    await seeder.admin()  # first, so the parallel calls share one admin
    groups = await asyncio.gather(*(seeder.products(lines) for _ in range(min(CHUNK, orders))))
    return [product for group in groups for product in group]


async def wait_until_projected(
    settings: Settings, position: int, projections: tuple[str, ...] = ("orders",)
) -> None:
    """Block until every named projection reached `position`, woken by the worker's batch
    notifications (re-reading the checkpoints every second in case one was missed)."""
    assert settings.redis_url is not None
    mongo = build_mongo(settings, patient=True)
    redis = Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + PROJECTION_BUDGET_S
    try:
        read_model = ReadModel(mongo[settings.mongodb_database])
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(projections_channel(settings.redis_prefix))
            while min((current := await read_model.positions(projections)).values()) < position:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"projections at {current}, wanted {position}")
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 1.0))
    finally:
        await redis.aclose()
        await mongo.close()


def graphql_request(
    query: str, variables: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """One request of a load spec: a GraphQL POST."""
    body = orjson.dumps({"query": query, "variables": variables}).decode()
    return {"method": "POST", "path": "/graphql", "body": body, "headers": headers}


def load_spec(
    port: int, requests: list[dict[str, Any]], plan: Plan, concurrency: int, check: str
) -> dict[str, Any]:
    return {
        "host": HOST,
        "port": port,
        "concurrency": concurrency,
        "duration_s": plan.round_s,
        "warmup_s": plan.warmup_s,
        "check": check,
        "requests": requests,
    }


@dataclass(frozen=True)
class Measured:
    """What one round of load saw."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_sample: str

    @classmethod
    def of(cls, result: dict[str, Any]) -> Measured:
        if not result["requests"]:
            raise RuntimeError(f"no request completed within the round: {result}")
        return cls(
            result["rps"],
            result["p50_ms"],
            result["p99_ms"],
            result["errors"],
            result["error_sample"],
        )


THROUGHPUT: Callable[[Measured], float] = attrgetter("rps")
MEDIAN_LATENCY: Callable[[Measured], float] = attrgetter("p50_ms")
TAIL_LATENCY: Callable[[Measured], float] = attrgetter("p99_ms")


def paired_ratios(
    over: Sequence[Measured], under: Sequence[Measured], figure: Callable[[Measured], float]
) -> Spread:
    """A figure's ratio round by round: round n of one side against round n of the other,
    measured close together, so drift between rounds cancels out of each ratio."""
    return spread([figure(a) / figure(b) for a, b in zip(over, under, strict=True)])


async def measure(spec: dict[str, Any]) -> Measured:
    return Measured.of(await load(spec))


def errors_shown(rounds: Sequence[Measured]) -> str:
    """The error count over all rounds, with the first error's body when there was one."""
    total = sum(r.errors for r in rounds)
    sample = next((r.error_sample for r in rounds if r.error_sample), "")
    # Shown in a Markdown table cell: no line breaks, no column separators.
    sample = " ".join(sample[:120].split()).replace("|", "\\|")
    return f"{total}" + (f" (first: `{sample}`)" if sample else "")


def throughput_latency(rounds: Sequence[Measured]) -> str:
    """`req/s; p50; p99` as median (min-max) over rounds."""
    rps = spread([r.rps for r in rounds])
    p50 = spread([r.p50_ms for r in rounds])
    p99 = spread([r.p99_ms for r in rounds])
    return f"{rps.show(0)} req/s; p50 {p50.show(2)} ms; p99 {p99.show(2)} ms"


# --- B1 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """The seeded orders as (order id, owner), and the position that includes them all."""

    orders: list[tuple[str, Account]]
    position: int


async def seed(settings: Settings, customers: int, per_customer: int) -> Seeded:
    seeder = Seeder(settings, pool_size=CHUNK)
    try:
        products = await create_products(seeder, customers * per_customer, LINES)
        accounts = await asyncio.gather(*(seeder.customer() for _ in range(customers)))
        # Customer by customer in turn, so every chunk spreads over several histories.
        buyers = [accounts[n % customers] for n in range(customers * per_customer)]
        placed = await place_orders(seeder, buyers, products, LINES)
    finally:
        await seeder.close()
    orders = [(str(c.value.id), buyer) for c, buyer in zip(placed, buyers, strict=True)]
    return Seeded(orders, max(c.position for c in placed))


async def start_baseline(running: Stack) -> int:
    """`python -m bench.raw_reads` on a free port, once uvicorn says it is serving."""
    port = free_port()
    await running.start(
        sys.executable,
        "-m",
        "bench.raw_reads",
        ready=(b"Application startup complete",),
        env={"PORT": str(port), "LOG_LEVEL": "INFO"},
    )
    return port


async def check_answers(api_port: int, baseline_port: int, order_id: str, owner: Account) -> None:
    """Both servers return this order, whole: a benchmark of nulls or 404s measures nothing."""
    async with httpx.AsyncClient(timeout=30) as client:
        request = graphql_request(ORDER_QUERY, {"id": order_id}, owner.headers)
        answer = await client.post(
            f"http://{HOST}:{api_port}/graphql",
            content=request["body"],
            headers=request["headers"] | {"Content-Type": "application/json"},
        )
        order = (answer.json().get("data") or {}).get("order") or {}
        if order.get("id") != order_id or len(order.get("lines", [])) != LINES:
            raise RuntimeError(f"order({order_id}) did not return the order: {answer.text[:300]}")
        raw = await client.get(f"http://{HOST}:{baseline_port}/orders/{order_id}")
        if raw.status_code != 200 or raw.json().get("_id") != order_id:
            raise RuntimeError(f"the baseline did not return {order_id}: {raw.text[:300]}")


async def run(settings: Settings, plan: Plan) -> Row:
    customers, per_customer = plan.size(8, 2), plan.size(40, 3)
    async with stack(settings) as running:
        (api_port, _), worker = await asyncio.gather(running.api(), running.worker())
        seeded = await seed(settings, customers, per_customer)
        await wait_until_projected(settings, seeded.position)
        # Idle from here on; stopping it leaves both servers the machine to themselves.
        await running.stop(worker)
        baseline_port = await start_baseline(running)
        await check_answers(api_port, baseline_port, *seeded.orders[0])
        graphql = load_spec(api_port, graphql_requests(seeded), plan, CONNECTIONS, "graphql")
        baseline = load_spec(baseline_port, baseline_requests(seeded), plan, CONNECTIONS, "status")
        api_rounds, baseline_rounds = [], []
        for _ in range(plan.rounds):
            api_rounds.append(await measure(graphql))
            baseline_rounds.append(await measure(baseline))
    sizes = (
        f"{customers} customers, {len(seeded.orders)} orders of {LINES} lines; "
        f"{CONNECTIONS} connections; {plan.rounds} rounds of "
        f"{plan.warmup_s:g} s warm-up + {plan.round_s:g} s"
    )
    return b1_row(api_rounds, baseline_rounds, sizes)


def graphql_requests(seeded: Seeded) -> list[dict[str, Any]]:
    return [
        graphql_request(ORDER_QUERY, {"id": oid}, owner.headers) for oid, owner in seeded.orders
    ]


def baseline_requests(seeded: Seeded) -> list[dict[str, Any]]:
    return [{"method": "GET", "path": f"/orders/{oid}"} for oid, _ in seeded.orders]


def b1_row(api: list[Measured], baseline: list[Measured], sizes: str) -> Row:
    throughput = paired_ratios(api, baseline, THROUGHPUT)
    tail = paired_ratios(api, baseline, TAIL_LATENCY)
    errors = sum(r.errors for r in [*api, *baseline])
    return Row(
        id="B1",
        what=f"`order(id)` over HTTP, GraphQL, one API process, {CONNECTIONS} connections",
        baseline="plain Starlette route, same `find_one`, orjson",
        target="throughput >= 0.5x baseline; p99 <= 2x baseline p99; no errors",
        figure=_headline(api),
        baseline_figure=_headline(baseline),
        ratio=f"throughput {throughput.show(2)}x; p99 {tail.show(2)}x",
        met=throughput.median >= 0.5 and tail.median <= 2.0 and errors == 0,
        sizes=sizes,
        details=[
            ("GraphQL `order(id)`", throughput_latency(api)),
            ("baseline GET /orders/{id}", throughput_latency(baseline)),
            ("throughput, GraphQL / baseline", throughput.show(2)),
            ("p99, GraphQL / baseline", tail.show(2)),
            ("errors, GraphQL", errors_shown(api)),
            ("errors, baseline", errors_shown(baseline)),
        ],
        notes=[
            "Each request reads the next seeded order with its owner's bearer token; the "
            "selection is the whole Order (lines, customer, timestamps); no consistency "
            "token is sent, so the API reads the projection as it stands. The baseline "
            "returns the same document from the same physical collection (resolved through "
            "`projection_state`, as the API does). The worker is stopped before measuring; "
            "both servers are up throughout, and rounds alternate GraphQL, baseline.",
        ],
    )


def _headline(rounds: Sequence[Measured]) -> str:
    rps = spread([r.rps for r in rounds])
    p99 = spread([r.p99_ms for r in rounds])
    return f"{rps.show(0)} req/s, p99 {p99.show(1)} ms"
