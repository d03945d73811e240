"""Two `shop serve` processes (two ports) and two workers; one API process is killed with
SIGKILL while orders flow through both. Its subscribers resume on the other with
`afterToken` and the token of the last update they got: nothing missed, nothing twice; the
writes it did not answer are retried on the other with their idempotency keys and placed
once."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.exceptions import ConnectionClosed

from tests.faults.api_servers import ApiServer, api_servers
from tests.faults.replicas import Customer, admin_token, create_product, sign_up, start_workers
from tests.pipeline import ALL, Pipeline
from tests.shop_api import MY_ORDERS_UPDATED, PRODUCT_UPDATED
from tests.support import (
    TRANSPORT_WS,
    WAIT_S,
    graphql_ws,
    place_order,
    token_position,
    unique,
    ws_auth,
)

ORDERS_PER_CUSTOMER = 40
CUSTOMERS = 2
STOCK = 10_000
# The load has gone a third of its way, and every subscriber on the victim has had this
# many updates, when the victim is killed.
KILL_AFTER_UPDATES = 2


@dataclass
class Load:
    """What each customer's writer placed (in order), and a condition to wait on it."""

    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    placed: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    through_victim: int = 0
    # Writes sent to the victim and not answered yet: the kill waits for one, so that a
    # mutation is cut off (before, during or after its commit) and has to be retried.
    in_flight_on_victim: int = 0
    retried: int = 0
    done: bool = False

    async def note(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def until(self, holds: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S), self.changed:
            await self.changed.wait_for(holds)

    async def token_of(self, customer: int, holds: Callable[[dict[str, Any]], bool]) -> str:
        """The consistency token of the customer's order that `holds`, once it was answered
        (the answer to a write on the victim may come from its retry on the survivor)."""
        await self.until(lambda: any(map(holds, self.placed[customer])))
        token: str = next(r for r in self.placed[customer] if holds(r))["consistencyToken"]
        return token


@dataclass
class Follower:
    """One client's subscription: what it got before and after it resumed elsewhere."""

    name: str
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    before: list[Any] = field(default_factory=list)
    after: list[Any] = field(default_factory=list)
    resumed_after: Any = None
    resumed_while_writing: bool = False

    @property
    def received(self) -> list[Any]:
        return self.before + self.after


@dataclass(frozen=True)
class Subscription:
    document: str
    variables: dict[str, Any]
    bearer: str | None
    # The pushed field, and which of its fields the client keeps.
    root: str
    key: str
    finished: Callable[[list[Any]], bool]
    # The consistency token naming the write that produced a kept value.
    token_of: Callable[[Any], Awaitable[str]]


async def follow(
    follower: Follower,
    load: Load,
    subscription: Subscription,
    server: ApiServer,
    fallback: ApiServer | None,
) -> None:
    """Receive the subscription from `server` until it is finished; if that server dies,
    resume on `fallback` with `afterToken` and the token of the last update received,
    as a client behind a load balancer reconnects."""
    variables = dict(subscription.variables)
    got = follower.before
    while True:
        try:
            async with graphql_ws(
                server.base_url, TRANSPORT_WS, ws_auth(subscription.bearer)
            ) as ws:
                op_id = await ws.subscribe(subscription.document, variables)
                await ws.sync()
                follower.listening.set()
                while not subscription.finished(follower.received):
                    pushed = (await ws.data(op_id, WAIT_S))[subscription.root]
                    got.append(pushed[subscription.key])
                    await load.note()
                return
        except ConnectionClosed:
            assert fallback is not None, f"{follower.name} lost its process"
            assert got, f"{follower.name} got nothing before its process died"
            follower.resumed_after = got[-1]
            variables["after"] = await subscription.token_of(got[-1])
            follower.resumed_while_writing = not load.done
            server, fallback, got = fallback, None, follower.after


async def write_orders(
    load: Load, customer: int, token: str, product_id: str, victim: ApiServer, survivor: ApiServer
) -> None:
    """Place the customer's orders one after the other, every other one through the victim
    while it lives; a write the victim did not answer is retried on the survivor with the
    same idempotency key (so it is placed once whether or not the victim committed it)."""
    placed = load.placed[customer]
    for n in range(ORDERS_PER_CUSTOMER):
        key = unique("load")
        use_victim = n % 2 == 0 and victim.process.returncode is None
        if use_victim:
            load.in_flight_on_victim += 1
            await load.note()
        try:
            result = await place_order(
                (victim if use_victim else survivor).client, token, [(product_id, 1)], key
            )
            load.through_victim += use_victim
        except httpx.TransportError:
            assert use_victim
            load.retried += 1
            result = await place_order(survivor.client, token, [(product_id, 1)], key)
        finally:
            load.in_flight_on_victim -= use_victim
        assert result["__typename"] == "OrderSuccess", result
        placed.append(result)
        await load.note()


async def orders_in_write_store(engine: AsyncEngine, email: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            text(
                "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
                "WHERE c.email = :email"
            ),
            {"email": email},
        )
    return int(count or 0)


def subscriptions(
    load: Load, n: int, customer: Customer, product_id: str
) -> dict[str, Subscription]:
    """The two subscriptions a client of customer `n` keeps open: its orders (their ids)
    and the product it buys (its stock)."""

    async def order_token(order_id: Any) -> str:
        return await load.token_of(n, lambda result: result["order"]["id"] == order_id)

    async def stock_token(stock: Any) -> str:
        # The k-th order of this customer's writer left the product at STOCK - k.
        k = STOCK - int(stock)
        await load.until(lambda: len(load.placed[n]) >= k)
        token: str = load.placed[n][k - 1]["consistencyToken"]
        return token

    return {
        "orders": Subscription(
            MY_ORDERS_UPDATED, {}, customer.token, "myOrdersUpdated", "id",
            lambda got: len(got) >= ORDERS_PER_CUSTOMER, order_token,
        ),
        "stock": Subscription(
            PRODUCT_UPDATED, {"id": product_id}, None, "productUpdated", "stock",
            lambda got: bool(got) and got[-1] == STOCK - ORDERS_PER_CUSTOMER, stock_token,
        ),
    }  # fmt: skip


async def test_subscribers_of_a_killed_api_process_resume_on_the_other_without_gap_or_repeat(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    async with api_servers(pipeline, 2) as (victim, survivor):
        await start_workers(pipeline)
        admin = await admin_token(engine, pipeline, survivor)
        customers = [await sign_up(victim) for _ in range(CUSTOMERS)]
        products = [await create_product(survivor, admin, STOCK) for _ in range(CUSTOMERS)]
        load = Load(placed={n: [] for n in range(CUSTOMERS)})

        followers: dict[tuple[str, str, int], Follower] = {}
        tasks: list[asyncio.Task[None]] = []
        for n, (customer, product) in enumerate(zip(customers, products, strict=True)):
            for what, subscription in subscriptions(load, n, customer, product["id"]).items():
                for where, (server, fallback) in {
                    "victim": (victim, survivor), "survivor": (survivor, None)
                }.items():  # fmt: skip
                    follower = followers[where, what, n] = Follower(f"{where} {what} {n}")
                    tasks.append(asyncio.create_task(
                        follow(follower, load, subscription, server, fallback)
                    ))  # fmt: skip
        async with asyncio.timeout(WAIT_S):
            await asyncio.gather(*(f.listening.wait() for f in followers.values()))

        writing = asyncio.gather(*(
            write_orders(load, n, customer.token, product["id"], victim, survivor)
            for n, (customer, product) in enumerate(zip(customers, products, strict=True))
        ))  # fmt: skip
        on_victim = [f for (where, _, _), f in followers.items() if where == "victim"]
        await load.until(lambda: (
            len(load.placed[0]) >= ORDERS_PER_CUSTOMER // 3
            and all(len(f.before) >= KILL_AFTER_UPDATES for f in on_victim)
            and load.in_flight_on_victim > 0
        ))  # fmt: skip
        os.kill(victim.process.pid, signal.SIGKILL)
        killed_at = {n: len(placed) for n, placed in load.placed.items()}
        await writing
        load.done = True
        await load.note()
        async with asyncio.timeout(WAIT_S * 2):
            await asyncio.gather(*tasks)
        assert await victim.process.wait() == -signal.SIGKILL

        last = max(token_position(r["consistencyToken"]) for p in load.placed.values() for r in p)
        await pipeline.wait_until_projected(last)
        verified = await pipeline.verify(engine)

    for n, customer in enumerate(customers):
        written = [result["order"]["id"] for result in load.placed[n]]
        assert len(set(written)) == ORDERS_PER_CUSTOMER
        # Placed once each, though some writes were retried on the survivor.
        assert await orders_in_write_store(engine, customer.email) == ORDERS_PER_CUSTOMER
        for where in ("victim", "survivor"):
            orders, stock = followers[where, "orders", n], followers[where, "stock", n]
            # Every order, once, in the order it was placed, across the reconnection.
            assert orders.received == written, (where, orders)
            # Stock only falls (no update twice) down to where the load left it (updates
            # in between may be folded into one, as a live subscription's are).
            assert stock.received == sorted(set(stock.received), reverse=True), (where, stock)
            assert stock.received[-1] == STOCK - ORDERS_PER_CUSTOMER
        resumed = [followers["victim", what, n] for what in ("orders", "stock")]
        for follower in resumed:
            assert follower.before, follower
            assert follower.after, follower  # it resumed on the survivor
        print(
            f"customer {n}: killed after {killed_at[n]} of {ORDERS_PER_CUSTOMER} orders; "
            + "; ".join(
                f"{f.name}: {len(f.before)} before, {len(f.after)} after"
                f"{' (resumed while orders flowed)' if f.resumed_while_writing else ''}"
                for f in resumed
            )
        )
    assert load.through_victim > 0
    assert any(f.resumed_while_writing for f in followers.values())
    assert verified == {name: [] for name in ALL}
    print(
        f"{load.through_victim} orders through the victim, {load.retried} retried on the survivor"
    )
