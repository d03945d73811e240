"""What the read rows share: the B1 query, seeding orders in parallel, waiting for the
projection, one round of HTTP load and its figures, ratios round by round.

B1 itself (the API against the raw route and PostGraphile) is bench/order_by_id.py; B2
(history size) is bench/history.py.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson
from redis.asyncio import Redis

from app.bootstrap import build_mongo
from app.settings import Settings
from bench.plan import Plan
from bench.seed import Account, Seeder
from bench.stack import load
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
    # CPU (user + system) per response, warm-up included, in ms: the server process's,
    # and its stores' (bench.store_cpu); nan where a row does not measure them.
    cpu_ms: float = math.nan
    store_cpu_ms: float = math.nan

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
