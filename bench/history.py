"""B2: a customer's order history from the projection, against the write-store fallback.

`myOrders(first: 20)` for customers with small, medium and large histories. The
projection path is one API process as deployed; the fallback path is a second one with
CONSISTENCY_WAIT_MS=0, sent a consistency token the projection cannot reach: the worker
is stopped after projecting everything and one more order is written, so every read
with that order's token is answered from PostgreSQL. Both paths send a token (the
projection's a reached one), so they do the same bookkeeping and differ only in where
the page comes from; `extensions.consistency.servedFrom` is checked once per path.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx

from app.settings import Settings
from bench.plan import Plan
from bench.reads import (
    CHUNK,
    HOST,
    MEDIAN_LATENCY,
    ORDER_FIELDS,
    THROUGHPUT,
    Measured,
    create_products,
    errors_shown,
    graphql_request,
    load_spec,
    measure,
    paired_ratios,
    place_orders,
    throughput_latency,
    wait_until_projected,
)
from bench.report import Row
from bench.seed import Account, Seeder
from bench.stack import Stack, stack
from bench.stats import spread
from schema.consistency import ConsistencyTokens

LINES = 5
PAGE = 20
CONNECTIONS = 8
HISTORY_QUERY = (
    f"query History {{ myOrders(first: {PAGE}) {{ edges {{ cursor node {{ {ORDER_FIELDS} }} }} "
    "pageInfo { hasNextPage endCursor } } }"
)
PROJECTION, FALLBACK = "projection", "write_store"


@dataclass(frozen=True)
class ReadPath:
    """One way to answer the query: the API process and the token that selects the path."""

    served_from: str
    port: int
    token: str

    def request(self, customer: Account) -> dict[str, Any]:
        headers = customer.headers | {"X-Consistency-Token": self.token}
        return graphql_request(HISTORY_QUERY, {}, headers)


async def seed_histories(seeder: Seeder, sizes: tuple[int, ...]) -> tuple[list[Account], int]:
    """A customer per size with that many orders; the position that includes them all."""
    products = await create_products(seeder, sum(sizes), LINES)
    customers = list(await asyncio.gather(*(seeder.customer() for _ in sizes)))
    buyers = [
        customer for customer, size in zip(customers, sizes, strict=True) for _ in range(size)
    ]
    placed = await place_orders(seeder, buyers, products, LINES)
    return customers, max(c.position for c in placed)


async def write_past_the_projection(seeder: Seeder) -> int:
    """One more order by a customer of its own, written with the worker stopped: the
    position no projection will reach while the benchmark runs."""
    products = await seeder.products(1)
    stranger = await seeder.customer()
    return (await seeder.place(stranger, products, 1)).position


async def check_path(path: ReadPath, customer: Account, size: int) -> list[str]:
    """The page's order ids, after checking that the path answered and the page is whole."""
    request = path.request(customer)
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"http://{HOST}:{path.port}/graphql",
            content=request["body"],
            headers=request["headers"] | {"Content-Type": "application/json"},
        )
    body = answer.json()
    served = ((body.get("extensions") or {}).get("consistency") or {}).get("servedFrom")
    edges = ((body.get("data") or {}).get("myOrders") or {}).get("edges", [])
    if served != path.served_from or len(edges) != min(PAGE, size):
        raise RuntimeError(
            f"wanted {min(PAGE, size)} orders served from {path.served_from}, "
            f"got {len(edges)} from {served}: {answer.text[:300]}"
        )
    return [edge["node"]["id"] for edge in edges]


async def start_paths(running: Stack) -> tuple[int, int]:
    """The API as deployed, and one that never waits for the projection."""
    (projection_port, _), (fallback_port, _) = await asyncio.gather(
        running.api(), running.api(env={"CONSISTENCY_WAIT_MS": "0"})
    )
    return projection_port, fallback_port


async def run(settings: Settings, plan: Plan) -> Row:
    sizes = (plan.size(10, 2), plan.size(100, 5), plan.size(1000, 10))
    seeder = Seeder(settings, pool_size=CHUNK)
    try:
        async with stack(settings) as running:
            (projection_port, fallback_port), worker = await asyncio.gather(
                start_paths(running), running.worker()
            )
            customers, projected = await seed_histories(seeder, sizes)
            await wait_until_projected(settings, projected)
            await running.stop(worker)
            ahead = await write_past_the_projection(seeder)
            tokens = ConsistencyTokens(settings.consistency_keys())
            paths = (
                ReadPath(PROJECTION, projection_port, tokens.issue(projected)),
                ReadPath(FALLBACK, fallback_port, tokens.issue(ahead)),
            )
            pages = [await check_path(path, customers[-1], sizes[-1]) for path in paths]
            if pages[0] != pages[1]:
                raise RuntimeError("the projection and the fallback returned different pages")
            results = await measure_paths(paths, customers, sizes, plan)
    finally:
        await seeder.close()
    return b2_row(results, sizes, plan)


async def measure_paths(
    paths: tuple[ReadPath, ...], customers: list[Account], sizes: tuple[int, ...], plan: Plan
) -> dict[tuple[str, int], list[Measured]]:
    """Every (path, size) once per round, interleaved so drift weighs on all of them."""
    results: dict[tuple[str, int], list[Measured]] = defaultdict(list)
    for _ in range(plan.rounds):
        for customer, size in zip(customers, sizes, strict=True):
            for path in paths:
                spec = load_spec(path.port, [path.request(customer)], plan, CONNECTIONS, "graphql")
                results[path.served_from, size].append(await measure(spec))
    return results


def b2_row(
    results: dict[tuple[str, int], list[Measured]], sizes: tuple[int, ...], plan: Plan
) -> Row:
    """Ratios round by round: projection over fallback at the largest history, and the
    projection's p50 at the largest history over its p50 at the smallest."""
    smallest, largest = sizes[0], sizes[-1]
    projected, fallback = results[PROJECTION, largest], results[FALLBACK, largest]
    speedup = paired_ratios(projected, fallback, THROUGHPUT)
    growth = paired_ratios(projected, results[PROJECTION, smallest], MEDIAN_LATENCY)
    equal_pages = paired_ratios(projected, results[PROJECTION, sizes[1]], MEDIAN_LATENCY)
    every_round = [m for rounds in results.values() for m in rounds]
    errors = sum(m.errors for m in every_round)
    return Row(
        id="B2",
        what=f"`myOrders(first: {PAGE})` by history size, projection, {CONNECTIONS} connections",
        baseline="the same query forced to the write-store fallback",
        target=f"projection >= 3x fallback throughput at {largest} orders; "
        f"projection p50 at {largest} <= 1.3x at {smallest}; no errors",
        figure=_headline(projected, largest),
        baseline_figure=_headline(fallback, largest),
        ratio=f"throughput {speedup.show(2)}x at {largest}; "
        f"p50 {largest} vs {smallest} orders {growth.show(2)}x",
        met=speedup.median >= 3.0 and growth.median <= 1.3 and errors == 0,
        sizes=f"customers with {', '.join(map(str, sizes))} orders of {LINES} lines; "
        f"{CONNECTIONS} connections; {plan.rounds} rounds of {plan.warmup_s:g} s warm-up "
        f"+ {plan.round_s:g} s per size and path",
        details=[
            *_details(results, sizes),
            (f"projection p50, {largest} vs {smallest} orders", f"{growth.show(2)}x"),
            (f"projection p50, {largest} vs {sizes[1]} orders", f"{equal_pages.show(2)}x"),
            ("errors", errors_shown(every_round)),
        ],
        notes=[
            "Both paths send a consistency token. The projection's is one the projection "
            "has reached (the response says `servedFrom: projection`); the fallback API "
            "runs with CONSISTENCY_WAIT_MS=0 and gets the token of an order written after "
            "the worker was stopped (the response says `servedFrom: write_store`). Checked "
            "once per path before measuring, with the largest history: both return the "
            "same page. The fallback's cost includes the checkpoint read and the pub/sub "
            "subscription a read-your-writes miss makes before it gives up.",
            f"A page holds at most {PAGE} orders, so the smallest history's page is "
            f"{min(PAGE, smallest)} orders and the larger ones' {min(PAGE, sizes[1])} and "
            f"{min(PAGE, largest)}: the p50 ratio against the smallest history includes the "
            "difference in page size; the one against the middle history compares pages of "
            "the same size when both are full.",
        ],
    )


def _details(
    results: dict[tuple[str, int], list[Measured]], sizes: tuple[int, ...]
) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for size in sizes:
        projected, fallback = results[PROJECTION, size], results[FALLBACK, size]
        speedup = paired_ratios(projected, fallback, THROUGHPUT)
        rows += [
            (f"projection, {size} orders", throughput_latency(projected)),
            (f"fallback, {size} orders", throughput_latency(fallback)),
            (f"throughput, projection / fallback, {size} orders", f"{speedup.show(2)}x"),
        ]
    return rows


def _headline(rounds: list[Measured], size: int) -> str:
    rps = spread([r.rps for r in rounds])
    p50 = spread([r.p50_ms for r in rounds])
    return f"{rps.show(0)} req/s, p50 {p50.show(1)} ms at {size} orders"
