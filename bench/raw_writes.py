"""B3's baseline: placeOrder's own SQL, run raw with asyncpg, with no API in front of it.

    echo SPEC_JSON | python -m bench.raw_writes

SPEC: {"dsn", "concurrency", "duration_s", "warmup_s", "event_log_lock", "schema_version",
"orders": [{"customer_id", "lines": [[product_id, quantity], ...]}, ...]}; the caller takes
the lock key and schema version from `writes`, which keeps SQLAlchemy out of this process.
Each of `concurrency` connections places the orders in turn from its own offset, one at a
time (a closed loop, like bench.http_load), for warm-up plus duration; only orders
finished after the warm-up count. Prints the load generator's JSON: requests, errors,
seconds, rps, p50_ms, p99_ms, max_ms, error_sample, and cpu_s (this process's CPU time).

The statements are the ones `writes.handlers.orders.place_order` sends without an
idempotency key, imported from writes/sql.py: the same text (so the same prepared
statements), the same order, the same round trips, inside BEGIN ... COMMIT with the
products locked FOR UPDATE and the event appended under the event log's advisory lock.
bench.writes captures the handler's statements with asyncpg's query logger before each
run and stops if they differ from STATEMENTS. What the baseline leaves out is exactly
what the API adds around them: HTTP, GraphQL, the JWT, the session, the pool's checkout
and the worker's nudge.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import uvloop

from bench.http_load import Tally, summary
from writes.sql import (
    APPEND_EVENT,
    INSERT_LINES,
    INSERT_ORDER,
    LOCK_EVENT_LOG,
    LOCK_PRODUCTS,
    PLACE_ORDER,
    SELECT_CUSTOMER,
    TAKE_STOCK,
)

# The handler's own statements (writes/sql.py imports nothing, so no SQLAlchemy here).
STATEMENTS = PLACE_ORDER


def now_ms() -> datetime:
    """The handler's clock: UTC, truncated to milliseconds (writes.clock.now_ms)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def placed_event(
    order_id: uuid.UUID, customer: asyncpg.Record, lines: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """The OrderPlaced payload the handler appends (writes.handlers.orders._placed_event)."""
    return {
        "order_id": str(order_id),
        "customer": {
            "id": str(customer["id"]),
            "name": customer["name"],
            "email": customer["email"],
        },
        "lines": lines,
        "item_count": sum(line["quantity"] for line in lines),
        "total_cents": sum(line["line_total_cents"] for line in lines),
        "placed_at": now.isoformat(timespec="milliseconds"),
    }


def event_metadata(customer_id: uuid.UUID, schema_version: int) -> dict[str, Any]:
    """What UnitOfWork.record puts beside every event."""
    return {
        "correlation_id": f"raw-{uuid.uuid4().hex}",
        "causation_id": str(uuid.uuid4()),
        "actor": {"id": str(customer_id), "role": "CUSTOMER"},
        "schema_version": schema_version,
    }


def order_lines(
    products: dict[uuid.UUID, asyncpg.Record], quantities: dict[uuid.UUID, int]
) -> list[dict[str, Any]]:
    """The lines as the event carries them, priced from the locked product rows."""
    return [
        {
            "product_id": str(pid), "sku": products[pid]["sku"], "name": products[pid]["name"],
            "unit_price_cents": products[pid]["price_cents"], "quantity": quantity,
            "line_total_cents": products[pid]["price_cents"] * quantity,
        }
        for pid, quantity in quantities.items()
    ]  # fmt: skip


async def place_order(
    conn: asyncpg.Connection, order: dict[str, Any], spec: dict[str, Any]
) -> None:
    """One order, statement for statement and round trip for round trip as the handler."""
    customer_id = uuid.UUID(order["customer_id"])
    quantities = {uuid.UUID(pid): quantity for pid, quantity in order["lines"]}
    async with conn.transaction():
        customer = await conn.fetchrow(SELECT_CUSTOMER, customer_id)
        if customer is None:
            raise LookupError(f"no customer {customer_id}")
        locked = await conn.fetch(LOCK_PRODUCTS, list(quantities))
        products = {row["id"]: row for row in locked}
        now, order_id = now_ms(), uuid.uuid4()
        lines = order_lines(products, quantities)
        event = placed_event(order_id, customer, lines, now)
        await conn.execute(TAKE_STOCK, now, list(quantities), list(quantities.values()))
        await conn.execute(
            INSERT_ORDER, order_id, customer_id, "PLACED", event["item_count"],
            event["total_cents"], now, now, 1,
        )  # fmt: skip
        await conn.execute(
            INSERT_LINES, order_id, list(range(1, len(lines) + 1)),
            [uuid.UUID(line["product_id"]) for line in lines], [line["sku"] for line in lines],
            [line["name"] for line in lines], [line["unit_price_cents"] for line in lines],
            [line["quantity"] for line in lines],
        )  # fmt: skip
        await conn.execute(LOCK_EVENT_LOG, spec["event_log_lock"])
        metadata = event_metadata(customer_id, spec["schema_version"])
        await conn.fetchval(
            APPEND_EVENT, uuid.uuid4(), "order", order_id, 1, "OrderPlaced",
            orjson.dumps(event).decode(), orjson.dumps(metadata).decode(),
        )  # fmt: skip


async def client(spec: dict[str, Any], offset: int, tally: Tally, until: float) -> None:
    """One connection placing the spec's orders in turn, from its own offset."""
    orders = spec["orders"]
    conn = await asyncpg.connect(spec["dsn"])
    n = offset
    try:
        while (started := time.perf_counter()) < until:
            failure = ""
            try:
                await place_order(conn, orders[n % len(orders)], spec)
            except (asyncpg.PostgresError, LookupError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            n += 1
            if started >= tally.measure_from:
                tally.latencies_ms.append((time.perf_counter() - started) * 1000)
                if failure:
                    tally.errors += 1
                    tally.error_sample = tally.error_sample or failure[:300]
    finally:
        await conn.close()


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    begin, cpu = time.perf_counter(), time.process_time()
    tally = Tally(measure_from=begin + spec.get("warmup_s", 0.0))
    until = tally.measure_from + spec["duration_s"]
    await asyncio.gather(*(client(spec, i, tally, until) for i in range(spec["concurrency"])))
    # The CPU all orders took here, warm-up included (start-up and imports not).
    return summary(tally, until) | {"cpu_s": time.process_time() - cpu}


def main() -> int:
    spec = orjson.loads(sys.stdin.buffer.read())
    result = uvloop.run(drive(spec))
    sys.stdout.buffer.write(orjson.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
