"""200 idle subscribers plus one that never reads: updates still reach the 200 promptly;
after all disconnect, Redis shows no subscription left."""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import suppress
from typing import Any

from app.settings import Settings
from reads.hub import DEFAULT_QUEUE
from tests.conftest import Api, sign_up
from tests.pipeline import Pipeline
from tests.shop_api import place
from tests.support import (
    CHANGE_PRICE,
    CREATE_PRODUCT,
    WS_PROTOCOLS,
    StalledWebSocket,
    graphql_ws,
    server_send_queue,
    token_position,
    unique,
    ws_auth,
)
from workers.notifications import projections_channel

SUBSCRIBERS = 200
CONNECTING_AT_ONCE = 20
UPDATES = 8
# Generous for a 2-core machine that runs the server, the worker and all 201 clients:
# from the mutation being sent to the last of the 200 subscribers having the change.
LATENCY_BOUND_S = 5.0

# The stalled client asks for a 5000-character description 15 times per message, in
# a few operations: ~75 kB per operation per product change, soon more than its tiny
# receive buffer plus the server's socket buffers hold, so the server's sends to it stop.
DESCRIPTION = "slow " * 1000
HEAVY_OPERATIONS = 6
# Its projectionProgress operations hear of every batch of every projection: a burst of
# orders announces more batches than a listener's queue holds, with room to spare for the
# few it took before the connection stopped, so they overflow.
PROGRESS_OPERATIONS = 3
BURST_NOTIFICATIONS = DEFAULT_QUEUE + 150

LIGHT = """subscription($id: ID!, $after: String) {
  productUpdated(id: $id, afterToken: $after) { id priceCents version }
}"""
HEAVY = (
    "subscription { productUpdated { " + " ".join(f"d{i}: description" for i in range(15)) + " } }"
)
PROGRESS = "subscription { projectionProgress { name position } }"


async def create(
    api: Api, admin_token: str, read_side: Pipeline, stock: int = 10
) -> tuple[str, str]:
    """A product with a long description, projected: its id and consistency token."""
    data = await api.client.data(
        CREATE_PRODUCT,
        {
            "input": {
                "sku": unique("SKU"),
                "name": "Load mug",
                "description": DESCRIPTION,
                "priceCents": 1000,
                "stock": stock,
            }
        },
        admin_token,
    )
    created = data["createProduct"]
    assert created["__typename"] == "ProductSuccess", created
    await read_side.wait_until_projected(token_position(created["consistencyToken"]))
    return created["product"]["id"], created["consistencyToken"]


async def change_price(api: Api, admin_token: str, product_id: str, price: int) -> int:
    """The product's version after the change."""
    data = await api.client.data(
        CHANGE_PRICE, {"input": {"productId": product_id, "priceCents": price}}, admin_token
    )
    result = data["changeProductPrice"]
    assert result["__typename"] == "ProductSuccess", result
    version: int = result["product"]["version"]
    return version


async def burst(
    api: Api, customer_token: str, read_side: Pipeline, product_id: str
) -> tuple[int, int]:
    """Place orders until the worker announced BURST_NOTIFICATIONS batches (an order
    touches several projections; several orders may share a batch): (orders, batches)."""
    channel = projections_channel(read_side.settings.redis_prefix)
    announced = orders = 0
    async with read_side.redis.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        while announced < BURST_NOTIFICATIONS:
            assert orders < BURST_NOTIFICATIONS, f"only {announced} batches announced"
            placed = await place(api, customer_token, [(product_id, 1)])
            assert placed["__typename"] == "OrderSuccess", placed
            orders += 1
            # Count what was announced so far; once the orders alone would be enough,
            # wait (a bounded time) for the worker to announce at least one more batch.
            wait_s = 0.0 if orders * 4 < BURST_NOTIFICATIONS else 2.0
            while message := await pubsub.get_message(timeout=wait_s):
                announced += message["type"] == "message"
                wait_s = 0.0
    return orders, announced


async def test_idle_subscribers_are_not_slowed_by_one_that_never_reads_and_nothing_stays_subscribed(
    api: Api, admin_token: str, settings: Settings, read_side: Pipeline
) -> None:
    product_id, token = await create(api, admin_token, read_side)
    other_id, _ = await create(api, admin_token, read_side, stock=10_000)
    buyer = await sign_up(api, "Bea Burst")

    stalled = await StalledWebSocket.open(api.base_url, ws_auth(admin_token))
    heavy_ops = {f"heavy-{index}" for index in range(HEAVY_OPERATIONS)}
    progress_ops = {f"progress-{index}" for index in range(PROGRESS_OPERATIONS)}
    readers: list[asyncio.Task[None]] = []
    try:
        for op_id in sorted(heavy_ops):
            await stalled.subscribe(op_id, HEAVY, {})
        for op_id in sorted(progress_ops):
            await stalled.subscribe(op_id, PROGRESS, {})

        # Each subscriber records when each version of the product reached it.
        arrivals: dict[int, list[float]] = {}
        everyone_has: dict[int, asyncio.Event] = {}
        connecting = asyncio.Semaphore(CONNECTING_AT_ONCE)
        subscribed: list[int] = []
        all_subscribed = asyncio.Event()

        async def subscriber(index: int) -> None:
            async with connecting:
                ws_cm = graphql_ws(api.base_url, WS_PROTOCOLS[index % 2], {})
                ws = await ws_cm.__aenter__()
            try:
                # afterToken: a change made before this subscription listens is replayed.
                op_id = await ws.subscribe(LIGHT, {"id": product_id, "after": token})
                subscribed.append(index)
                if len(subscribed) == SUBSCRIBERS:
                    all_subscribed.set()
                while True:
                    pushed: dict[str, Any] = (await ws.data(op_id, budget_s=120))["productUpdated"]
                    assert pushed["id"] == product_id, pushed
                    times = arrivals.setdefault(pushed["version"], [])
                    times.append(time.monotonic())
                    if len(times) == SUBSCRIBERS:
                        everyone_has.setdefault(pushed["version"], asyncio.Event()).set()
            finally:
                await ws_cm.__aexit__(None, None, None)

        async def until(event: asyncio.Event, what: str, budget_s: float) -> None:
            """Wait for `event`, failing at once if a subscriber failed."""
            waiter = asyncio.ensure_future(event.wait())
            try:
                done, _ = await asyncio.wait(
                    {waiter, *readers}, timeout=budget_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
                with suppress(asyncio.CancelledError):
                    await waiter
            for reader in readers:
                if reader.done():
                    reader.result()  # a subscriber's failure, raised here
            assert waiter in done, f"{what} within {budget_s} s"

        started = time.monotonic()
        readers.extend(asyncio.create_task(subscriber(i)) for i in range(SUBSCRIBERS))
        await until(all_subscribed, f"not all {SUBSCRIBERS} subscribed", 90)
        connect_s = time.monotonic() - started

        # Warm-up: once everyone has the first change, every subscription is listening.
        version = await change_price(api, admin_token, product_id, 1001)
        everyone_has.setdefault(version, asyncio.Event())
        await until(everyone_has[version], f"not all subscribers got version {version}", 60)

        # The stalled client's sends back up, then its progress operations overflow.
        burst_started = time.monotonic()
        orders, batches = await burst(api, buyer.token, read_side, other_id)
        burst_s = time.monotonic() - burst_started

        latencies: list[float] = []
        worst_per_update: list[float] = []
        for update in range(UPDATES):
            sent_at = time.monotonic()
            version = await change_price(api, admin_token, product_id, 1100 + update)
            everyone_has.setdefault(version, asyncio.Event())
            await until(everyone_has[version], f"not all subscribers got version {version}", 30)
            took = [at - sent_at for at in arrivals[version]]
            assert len(took) == SUBSCRIBERS
            latencies.extend(took)
            worst_per_update.append(max(took))

        # The stalled client really stopped the server's sends to it: its own buffer is
        # full and the server's side holds bytes that the client's closed window refuses.
        unread = stalled.unread_bytes()
        backlog = server_send_queue(settings.port, stalled.local_port())
        p50, worst = statistics.median(latencies), max(latencies)
        print(
            f"\n{SUBSCRIBERS} subscribers connected in {connect_s:.2f} s; burst of {orders} "
            f"orders ({batches} batches) in {burst_s:.2f} s; {UPDATES} updates: p50 "
            f"{p50 * 1000:.0f} ms, "
            f"max {worst * 1000:.0f} ms, worst per update "
            f"{[round(w * 1000) for w in worst_per_update]} ms; stalled client: {unread} "
            f"bytes unread, server send queue {backlog} bytes"
        )
        assert unread > 0
        assert backlog is None or backlog > 0
        assert worst <= LATENCY_BOUND_S, f"p50 {p50:.3f} s, max {worst:.3f} s"
        assert all(len(arrivals[v]) == SUBSCRIBERS for v in range(2, version + 1))

        # When the stalled client finally reads (its heavy operations stopped first),
        # each progress operation ends with an error saying it was dropped: the server
        # went on without it.
        for op_id in heavy_ops:
            await stalled.send({"type": "complete", "id": op_id})
        ended = await stalled.finish(progress_ops)
        for op_id, results in ended.items():
            assert results, op_id
            last = results[-1]
            assert len(last) == 1, (op_id, last)
            assert "dropped" in last[0]["message"], (op_id, last)
            assert all(not errors for errors in results[:-1]), (op_id, results)
    finally:
        for reader in readers:
            reader.cancel()
        outcomes = await asyncio.gather(*readers, return_exceptions=True)
        stalled.close()
    failures = [o for o in outcomes if not isinstance(o, asyncio.CancelledError)]
    assert not failures, failures[:3]

    # Everyone left: the hub's pub/sub connection unsubscribed; what stays is the near
    # cache's own (reads/near_cache.py), which lives as long as the API. The server
    # handles the closes in its own time, so look a bounded number of times.
    channel = projections_channel(settings.redis_prefix)
    near_cache = api.app.state.dependencies.queries.near_cache
    expected = 0 if near_cache is None else 1
    for _ in range(100):
        ((_, count),) = await read_side.redis.pubsub_numsub(channel)
        if count == expected:
            break
        await asyncio.sleep(0.1)
    assert count == expected, f"{count} subscription(s) to {channel} left after every client left"
