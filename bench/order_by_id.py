"""B1: `order(id)` through the API's GraphQL, against two baselines serving the same order.

- the raw route (bench/raw_reads.py): the same MongoDB `find_one` behind a bare
  Starlette route, the least a read of the projected document can cost in Python;
- PostGraphile 4.14 (bench/postgraphile_baseline.py) over the normalized write store:
  what skipping CQRS and pointing an off-the-shelf engine at PostgreSQL would give.

All three servers run at once, each one process, over the same seeded, projected orders;
each round loads them one after the other (the order rotating round by round), so drift
on this shared machine weighs on all three and each ratio is taken round by round. The
server's CPU per request is its process's (user + system, psutil), read around the
whole load run; the stores' (PostgreSQL backends of the bench's database, mongod) beside
it, since PostGraphile's work is mostly PostgreSQL's.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
import orjson
import psutil

from app.settings import Settings
from bench import postgraphile_baseline as postgraphile
from bench.plan import Plan
from bench.reads import (
    CHUNK,
    CONNECTIONS,
    HOST,
    LINES,
    ORDER_QUERY,
    TAIL_LATENCY,
    THROUGHPUT,
    Measured,
    create_products,
    errors_shown,
    graphql_request,
    load_spec,
    paired_ratios,
    place_orders,
    throughput_latency,
    wait_until_projected,
)
from bench.report import Row
from bench.seed import Account, Seeder
from bench.stack import Stack, free_port, load, stack
from bench.stats import spread
from bench.store_cpu import StoreCpu, spent

# Orders whose answers are compared across the three servers before measuring.
CHECKED_ORDERS = 8
STORES = "PostgreSQL backends + mongod"


@dataclass(frozen=True)
class Seeded:
    """The seeded orders as (order id, owner), and the position that includes them all."""

    orders: list[tuple[str, Account]]
    position: int


@dataclass(frozen=True)
class Server:
    """One server under load: its request mix and its process."""

    name: str
    spec: dict[str, Any]
    process: psutil.Process


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


async def start_raw_route(running: Stack) -> tuple[int, asyncio.subprocess.Process]:
    """`python -m bench.raw_reads` on a free port, once uvicorn says it is serving."""
    port = free_port()
    process = await running.start(
        sys.executable,
        "-m",
        "bench.raw_reads",
        ready=(b"Application startup complete",),
        env={"PORT": str(port), "LOG_LEVEL": "INFO"},
    )
    return port, process


async def check_answers(
    api_port: int, raw_port: int, postgraphile_port: int, orders: Sequence[tuple[str, Account]]
) -> None:
    """Every server returns these orders, whole, and PostGraphile the same facts as the
    API (ids, status, quantities, prices, totals, customer, timestamps): a benchmark of
    nulls, 404s or different data measures nothing."""
    async with httpx.AsyncClient(timeout=30) as client:
        for order_id, owner in orders:
            order = await _graphql(client, api_port, ORDER_QUERY, order_id, owner.headers)
            if (order or {}).get("id") != order_id or len(order.get("lines", [])) != LINES:
                raise RuntimeError(f"order({order_id}) did not return the order: {order}")
            raw = await client.get(f"http://{HOST}:{raw_port}/orders/{order_id}")
            if raw.status_code != 200 or raw.json().get("_id") != order_id:
                raise RuntimeError(f"the raw route did not return {order_id}: {raw.text[:300]}")
            other = await _graphql(
                client, postgraphile_port, postgraphile.ORDER_QUERY, order_id, {}, "orderById"
            )
            if other is None:
                raise RuntimeError(f"PostGraphile did not return {order_id}")
            ours, theirs = postgraphile.order_facts(order), postgraphile.postgraphile_facts(other)
            if ours != theirs:
                raise RuntimeError(
                    f"PostGraphile's order {order_id} differs from the API's: {theirs} != {ours}"
                )


async def _graphql(
    client: httpx.AsyncClient,
    port: int,
    query: str,
    order_id: str,
    headers: dict[str, str],
    field: str = "order",
) -> Any:
    request = graphql_request(query, {"id": order_id}, headers)
    answer = await client.post(
        f"http://{HOST}:{port}/graphql",
        content=request["body"],
        headers=request["headers"] | {"Content-Type": "application/json"},
    )
    body = orjson.loads(answer.content)
    if body.get("errors"):
        raise RuntimeError(f"{query.split('{')[0]} on port {port} failed: {answer.text[:300]}")
    return (body.get("data") or {}).get(field)


async def measure_costed(server: Server, stores: StoreCpu) -> Measured:
    """One round of load on one server, with its and its stores' CPU per response."""
    before, stores_before = server.process.cpu_times(), await stores.sample()
    result = await load(server.spec)
    after, stores_after = server.process.cpu_times(), await stores.sample()
    completed = max(result["completed"], 1)
    used = (after.user + after.system) - (before.user + before.system)
    return replace(
        Measured.of(result),
        cpu_ms=used * 1000 / completed,
        store_cpu_ms=spent(stores_before, stores_after) * 1000 / completed,
    )


async def run(settings: Settings, plan: Plan) -> Row:
    customers, per_customer = plan.size(8, 2), plan.size(40, 3)
    async with stack(settings) as running:
        # PostGraphile's npm ci (when node_modules is stale) overlaps the seeding.
        installed = asyncio.ensure_future(postgraphile.ensure_installed())
        (api_port, api), worker = await asyncio.gather(running.api(), running.worker())
        seeded = await seed(settings, customers, per_customer)
        await wait_until_projected(settings, seeded.position)
        # Idle from here on; stopping it leaves the servers the machine to themselves.
        await running.stop(worker)
        await installed
        (raw_port, raw), (postgraphile_port, engine) = await asyncio.gather(
            start_raw_route(running), postgraphile.start(running)
        )
        await check_answers(api_port, raw_port, postgraphile_port, seeded.orders[:CHECKED_ORDERS])
        servers = [
            Server("GraphQL", load_spec(api_port, graphql_requests(seeded), plan, CONNECTIONS,
                                        "graphql"), psutil.Process(api.pid)),
            Server("raw", load_spec(raw_port, raw_requests(seeded), plan, CONNECTIONS,
                                    "status"), psutil.Process(raw.pid)),
            Server("PostGraphile", load_spec(postgraphile_port, postgraphile_requests(seeded),
                                             plan, CONNECTIONS, "graphql"),
                   psutil.Process(engine.pid)),
        ]  # fmt: skip
        stores = StoreCpu.of(settings)
        rounds: dict[str, list[Measured]] = {server.name: [] for server in servers}
        for n in range(plan.rounds):
            # Each server goes first in turn: none always follows the same neighbour.
            for server in servers[n % len(servers) :] + servers[: n % len(servers)]:
                rounds[server.name].append(await measure_costed(server, stores))
    sizes = (
        f"{customers} customers, {len(seeded.orders)} orders of {LINES} lines; "
        f"{CONNECTIONS} connections; {plan.rounds} rounds of "
        f"{plan.warmup_s:g} s warm-up + {plan.round_s:g} s per server"
    )
    return b1_row(rounds["GraphQL"], rounds["raw"], rounds["PostGraphile"], sizes)


def graphql_requests(seeded: Seeded) -> list[dict[str, Any]]:
    return [
        graphql_request(ORDER_QUERY, {"id": oid}, owner.headers) for oid, owner in seeded.orders
    ]


def raw_requests(seeded: Seeded) -> list[dict[str, Any]]:
    return [{"method": "GET", "path": f"/orders/{oid}"} for oid, _ in seeded.orders]


def postgraphile_requests(seeded: Seeded) -> list[dict[str, Any]]:
    """The same orders in the same order, anonymously (PostGraphile checks no token)."""
    return [graphql_request(postgraphile.ORDER_QUERY, {"id": oid}, {}) for oid, _ in seeded.orders]


def b1_row(api: list[Measured], raw: list[Measured], engine: list[Measured], sizes: str) -> Row:
    vs_engine = paired_ratios(api, engine, THROUGHPUT)
    vs_raw = paired_ratios(api, raw, THROUGHPUT)
    tail_vs_engine = paired_ratios(api, engine, TAIL_LATENCY)
    tail_vs_raw = paired_ratios(api, raw, TAIL_LATENCY)
    errors = sum(r.errors for r in [*api, *raw, *engine])
    return Row(
        id="B1",
        what=f"`order(id)` over HTTP, GraphQL, one API process, {CONNECTIONS} connections",
        baseline="PostGraphile 4.14 over the write store (joins, one SQL statement), and "
        "the plain Starlette route (same `find_one`, orjson)",
        target="throughput >= 1.0x PostGraphile and >= 0.8x raw; p99 <= PostGraphile's; no errors",
        figure=_headline(api),
        baseline_figure=f"PostGraphile {_headline(engine)}; raw {_headline(raw)}",
        ratio=f"throughput {vs_engine.show(2)}x PostGraphile, {vs_raw.show(2)}x raw; "
        f"p99 {tail_vs_engine.show(2)}x PostGraphile",
        met=vs_engine.median >= 1.0
        and vs_raw.median >= 0.8
        and tail_vs_engine.median <= 1.0
        and errors == 0,
        sizes=sizes,
        details=[
            ("GraphQL `order(id)`", throughput_latency(api)),
            ("raw GET /orders/{id}", throughput_latency(raw)),
            ("PostGraphile `orderById`", throughput_latency(engine)),
            ("server CPU per request, GraphQL / raw / PostGraphile", _cpu(api, raw, engine)),
            (
                f"store CPU per request ({STORES}), GraphQL / raw / PostGraphile",
                _cpu(api, raw, engine, store=True),
            ),
            ("throughput, GraphQL / PostGraphile", vs_engine.show(2)),
            ("throughput, GraphQL / raw", vs_raw.show(2)),
            ("p99, GraphQL / PostGraphile", tail_vs_engine.show(2)),
            ("p99, GraphQL / raw", tail_vs_raw.show(2)),
            ("errors, GraphQL", errors_shown(api)),
            ("errors, raw", errors_shown(raw)),
            ("errors, PostGraphile", errors_shown(engine)),
        ],
        notes=[
            "Each GraphQL request reads the next seeded order with its owner's bearer "
            "token; the selection is the whole Order (lines, customer, timestamps); no "
            "consistency token is sent, so the API reads the projection as it stands. The "
            "raw route returns the same document from the same physical collection "
            "(resolved through `projection_state`, as the API does). PostGraphile 4.14 "
            "(bench/postgraphile, `npm ci` from its lock file) serves the bench's own "
            "PostgreSQL database with its CLI docs' production flags (no query log, no "
            "GraphiQL), `--simple-collections only`, NODE_ENV=production and its default "
            "pool of 10; it reads the same orders, "
            "in the same sequence, as `orderById { ... customerByCustomerId { id name } "
            "orderLinesByOrderIdList { ... } }` in one SQL statement, anonymously (it "
            "checks no token and no ownership, as out of the box). Before measuring, "
            f"the first {CHECKED_ORDERS} orders are read from all three and PostGraphile's "
            "must match the API's (ids, status, quantities, prices, line and order totals, "
            "customer, timestamps to the millisecond). The worker is stopped before "
            "measuring; the three servers are up throughout, and each round loads them "
            "in turn, the first server rotating round by round. CPU per request is the "
            "server process's user + system time around its whole load run (warm-up "
            "included) over every response; store CPU is the same for the PostgreSQL "
            "backends connected to the bench's database and the mongod process.",
        ],
    )


def _headline(rounds: Sequence[Measured]) -> str:
    rps = spread([r.rps for r in rounds])
    p99 = spread([r.p99_ms for r in rounds])
    return f"{rps.show(0)} req/s, p99 {p99.show(1)} ms"


def _cpu(*sides: Sequence[Measured], store: bool = False) -> str:
    shown = []
    for rounds in sides:
        values = [r.store_cpu_ms if store else r.cpu_ms for r in rounds]
        if any(math.isnan(value) for value in values):  # a store this bench cannot read
            shown.append("n/a")
        else:
            shown.append(spread(values).show(2))
    return " / ".join(shown) + " ms"
