"""A poison event parks that order's stream only; other orders keep projecting within the
normal lag; after the fix `shop projections retry --all` converges and verify is clean.

The poison comes from the real command path: while a trigger of the test's own is on
event_log, the victim's PlaceOrder appends an OrderPlaced whose lines lack `sku` (as a
buggy writer would). The log reader cannot turn that row into an OrderPlaced, and every
projection folds OrderPlaced, so each retries it and parks the victim's stream; the
victim's later, valid OrderShipped parks behind it (order is kept per stream). The fix
is an operator's data fix in event_log, then `shop projections retry --all`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.projection_state import DEAD_LETTERS, STATE
from tests.pipeline import (
    ALL,
    Pipeline,
    Writer,
    projections_status,
    shop,
    start_logged_worker,
    watch_states,
)
from tests.support import unique
from workers.policy import BASE_BACKOFF, LIVE

# The poison holds the orders projection back while it is retried with backoff, then
# parks; an order committed meanwhile is projected within that window plus this slack.
RETRY_WINDOW_S = sum((BASE_BACKOFF * 2**n).total_seconds() for n in range(LIVE.max_attempts - 1))
SLACK_S = 3.0
# Once the poison is parked, an order is projected about as fast as without it (the
# nudge wakes the worker at once; the per-second catch-up is the fallback).
NORMAL_LAG_S = 3.0


@asynccontextmanager
async def buggy_writer(engine: AsyncEngine, customer_id: uuid.UUID) -> AsyncIterator[None]:
    """While open, OrderPlaced events of this customer lose their lines' `sku`."""
    name = unique("strip_sku").replace("-", "_")
    # DDL takes no bind parameters; both names are ours (a UUID and a hex suffix).
    function = f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.type = 'OrderPlaced'
                   AND NEW.data -> 'customer' ->> 'id' = '{customer_id}' THEN
                    NEW.data := jsonb_set(NEW.data, '{{lines}}', (
                        SELECT jsonb_agg(line - 'sku')
                        FROM jsonb_array_elements(NEW.data -> 'lines') AS line));
                END IF;
                RETURN NEW;
            END $$"""  # noqa: S608
    async with engine.begin() as conn:
        await conn.execute(text(function))
        await conn.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON event_log "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {name} ON event_log"))
            await conn.execute(text(f"DROP FUNCTION {name}()"))


async def event_data(engine: AsyncEngine, position: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        data: dict[str, Any] = await conn.scalar(
            text("SELECT data FROM event_log WHERE position = :p"), {"p": position}
        )
    return data


async def restore_skus(engine: AsyncEngine, position: int) -> None:
    """The operator's fix: put each line's sku back, from the order's own lines."""
    async with engine.begin() as conn:
        fixed = await conn.execute(
            text("""
            UPDATE event_log e SET data = jsonb_set(e.data, '{lines}', (
                SELECT jsonb_agg(line || jsonb_build_object('sku', ol.sku) ORDER BY ol.line_no)
                FROM jsonb_array_elements(e.data -> 'lines') AS line
                JOIN order_lines ol ON ol.order_id = e.stream_id
                                   AND ol.product_id::text = line ->> 'product_id'))
            WHERE e.position = :p AND e.type = 'OrderPlaced'"""),
            {"p": position},
        )
        assert fixed.rowcount == 1


async def projected_within(pipeline: Pipeline, position: int, budget_s: float) -> float:
    """Seconds until the orders projection reached `position` (fails past the budget)."""
    started = time.monotonic()
    await pipeline.wait_until_projected(position, ["orders"], budget_s=budget_s)
    return time.monotonic() - started


async def test_a_poison_event_parks_its_stream_only_and_retry_converges_after_the_fix(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    worker = await start_logged_worker(pipeline)
    assert pipeline.settings.redis_url is not None
    writer = Writer(engine, pipeline.settings.redis_url, pipeline.settings.redis_prefix)
    try:
        victim, other = await writer.sign_up(), await writer.sign_up()
        product = await writer.product(stock=100)
        warm_up = await writer.place(other, product)
        await pipeline.wait_until_projected(warm_up.position)

        stop_watching = asyncio.Event()
        watching = asyncio.create_task(watch_states(engine, pipeline, "orders", stop_watching))
        try:
            async with buggy_writer(engine, victim.customer_id):
                poisoned = await writer.place(victim, product, quantity=2)
            order_id = str(poisoned.value.id)
            assert "sku" not in (await event_data(engine, poisoned.position))["lines"][0]
            # Another customer's order right behind the poison: held up by the retries at most.
            behind = await writer.place(other, product)
            lag = await projected_within(pipeline, behind.position, RETRY_WINDOW_S + SLACK_S)
            assert lag < RETRY_WINDOW_S + SLACK_S
            await worker.wait_for("parking OrderPlaced", order_id, budget_s=5)
        finally:
            stop_watching.set()
            states = await watching
        # What status showed meanwhile: retried with backoff, then parked.
        assert "retrying" in states, states
        assert states[-1] == "parked", states

        # The victim's next (valid) event parks behind the poison; other orders go on.
        shipped = await writer.ship(order_id)
        after = await writer.place(other, product)
        assert await projected_within(pipeline, after.position, NORMAL_LAG_S) < NORMAL_LAG_S
        await pipeline.wait_until_projected(after.position)  # every projection
    finally:
        await writer.close()

    orders = pipeline.db["orders"]
    assert await orders.find_one({"_id": order_id}) is None
    for committed in (warm_up, behind, after):
        assert await orders.find_one({"_id": str(committed.value.id)}) is not None
    letters = await pipeline.db[DEAD_LETTERS].find().to_list()
    assert sorted((d["projection"], d["position"], d["type"], d["stream_id"]) for d in letters) == [
        (name, position, kind, order_id)
        for name in sorted(ALL)
        for position, kind in (
            (poisoned.position, "OrderPlaced"),
            (shipped.position, "OrderShipped"),
        )
    ]
    # Only what the victim's order counts for differs from the write store.
    differences = await pipeline.verify(engine)
    assert len(differences["orders"]) == 1, differences["orders"]
    assert differences["orders"][0].startswith(f"orders/{order_id}: missing from the projection")
    victims = {"products": (f"products/{product}:",),
               "customers": (f"customers/{victim.customer_id}:",),
               "sales": ("sales_totals/", "sales_daily/", f"sales_products/{product}:")}  # fmt: skip
    for name, documents in victims.items():
        assert differences[name], name
        assert all(line.startswith(documents) for line in differences[name]), differences[name]

    status = await projections_status(pipeline)
    for name in ALL:
        assert (status[name].state, status[name].parked) == ("parked", 2), status[name]
        assert (
            f"OrderPlaced at {poisoned.position}: EventDecodeError: OrderPlaced v1: "
            "TypeError: OrderLineData lacks ['sku']"
        ) in status[name].last_error

    # Retrying before the fix changes nothing and says so.
    code, out, err = await shop(pipeline, "projections", "retry", "--all")
    assert (code, sorted(out.strip().splitlines())) == (
        1, [f"{name}: 0 replayed, 2 still parked" for name in sorted(ALL)]
    ), err  # fmt: skip

    await restore_skus(engine, poisoned.position)
    code, out, err = await shop(pipeline, "projections", "retry", "--all")
    assert (code, sorted(out.strip().splitlines())) == (
        0, [f"{name}: 2 replayed, 0 still parked" for name in sorted(ALL)]
    ), err  # fmt: skip

    order = await orders.find_one({"_id": order_id})
    assert order is not None
    assert (order["status"], order["version"], order["item_count"]) == ("SHIPPED", 2, 2)
    assert await pipeline.verify(engine) == {name: [] for name in ALL}
    status = await projections_status(pipeline)
    assert {(row.state, row.parked) for row in status.values()} == {("live", 0)}, status
    state = await pipeline.db[STATE].find_one({"_id": "orders"})
    assert state is not None
    assert state["last_retry_at"] is not None
    assert order["lines"][0]["sku"].startswith("SKU-")
