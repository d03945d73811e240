"""`shop dev` supervises what it starts: a worker or API process killed with SIGKILL comes
back (the log says so, with its backoff), the projections catch up with nothing lost, and
Ctrl-C still stops everything. Its start-up log times each phase and prints the GraphiQL
URL only once the API has answered a request.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from tests.dev_process import URL_LINE, DevShop, dev_shop
from tests.pipeline import ALL, Writer, shop
from tests.support import GraphQLClient
from writes.commands import Actor
from writes.views import Committed

RESTART_BUDGET_S = 60
MOST_ORDERS_IN_FLIGHT = 400


async def test_start_up_phases_are_timed_and_the_url_comes_after_a_first_answer(
    settings: Settings, tmp_path: Path
) -> None:
    async with dev_shop(settings, tmp_path) as dev:
        # Right after the URL line, the URL answers (it is printed after a request succeeded).
        async with httpx.AsyncClient(base_url=dev.base_url, timeout=30) as http:
            data = await GraphQLClient(http).data("{ __typename }")
        assert data == {"__typename": "Query"}

        url = dev.index(URL_LINE)
        answered = dev.index('"logger":"app.dev_cli"', "start-up: API answered its first request")
        assert dev.index("Application startup complete") < answered < url
        phases = [
            dev.index("start-up: embedded MongoDB ready in "),
            dev.index("start-up: embedded Redis ready in "),
            dev.index("start-up: stores ready in "),
            dev.index("start-up: migrations applied in "),
        ]
        assert max(phases[:2]) < phases[2] < phases[3] < answered
        # The API and the worker start together: both are spawned before either is up.
        await dev.log.wait_for("start-up: worker projecting in ", budget_s=RESTART_BUDGET_S)
        spawned = max(dev.index("API started as pid"), dev.index("worker started as pid"))
        up = min(
            dev.index("Application startup complete"), dev.index('"message":"worker ', ' started"')
        )
        assert phases[3] < spawned < up
        assert dev.index("start-up: ready in ") == url + 1


async def test_a_killed_worker_and_api_come_back_and_ctrl_c_stops_everything(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    async with dev_shop(settings, tmp_path) as dev:
        assert dev.pipeline.settings.redis_url is not None
        writer = Writer(engine, dev.pipeline.settings.redis_url, settings.redis_prefix)
        try:
            await _kill_the_worker_while_orders_flow(dev, writer)
        finally:
            await writer.close()
        code, out, err = await shop(dev.pipeline, "projections", "verify", "--all")
        assert (code, out) == (0, ""), err
        assert sorted(err.splitlines()) == sorted(f"{name}: 0 difference(s)" for name in ALL)

        await _kill_the_api(dev)

        tree = dev.tree()
        dev.process.send_signal(signal.SIGINT)  # Ctrl-C reaches shop dev alone: see app.supervision
        assert await asyncio.wait_for(dev.process.wait(), 60) == 0
        _, alive = psutil.wait_procs(tree, timeout=30)
        assert alive == [], f"still running after Ctrl-C: {alive}"


async def _kill_the_worker_while_orders_flow(dev: DevShop, writer: Writer) -> None:
    customer = await writer.sign_up()
    product = await writer.product(stock=1_000_000)
    first = await writer.place(customer, product)
    await dev.pipeline.wait_until_projected(first.position)

    restarted = asyncio.Event()
    placed: list[Committed[Any]] = []
    flow = asyncio.create_task(_orders(writer, customer, product, restarted, placed))
    try:
        victim = dev.pid_of("worker")
        mark = len(dev.log.lines)
        os.kill(victim, signal.SIGKILL)
        await dev.log.wait_for(
            f'"message":"worker (pid {victim}) exited with signal SIGKILL after ',
            "; restarting it in 0.5 s (restart 1)",
            after=mark,
            budget_s=RESTART_BUDGET_S,
        )
        await dev.log.wait_for('"message":"worker started as pid', after=mark)
        await dev.log.wait_for('"message":"worker ', ' started"', after=mark, budget_s=60)
        assert dev.pid_of("worker") != victim
        restarted.set()
        await flow
    finally:
        restarted.set()
        await flow
    last = await writer.place(customer, product)
    await dev.pipeline.wait_until_projected(last.position, budget_s=120)
    for committed in [*placed, last]:
        order = await dev.pipeline.db["orders"].find_one({"_id": str(committed.value.id)})
        assert order is not None, f"order {committed.value.id} was lost"


async def _orders(
    writer: Writer,
    customer: Actor,
    product: str,
    stop: asyncio.Event,
    placed: list[Committed[Any]],
) -> None:
    while not stop.is_set() and len(placed) < MOST_ORDERS_IN_FLIGHT:
        placed.append(await writer.place(customer, product))


async def _kill_the_api(dev: DevShop) -> None:
    victim = dev.pid_of("API")
    mark = len(dev.log.lines)
    os.kill(victim, signal.SIGKILL)
    await dev.log.wait_for(
        f'"message":"API (pid {victim}) exited with signal SIGKILL after ',
        "; restarting it in 0.5 s (restart 1)",
        after=mark,
        budget_s=RESTART_BUDGET_S,
    )
    await dev.log.wait_for("Application startup complete", after=mark, budget_s=RESTART_BUDGET_S)
    assert dev.pid_of("API") != victim
    async with httpx.AsyncClient(base_url=dev.base_url, timeout=30) as http:
        data = await GraphQLClient(http).data("{ products(first: 1) { edges { node { id } } } }")
    assert data["products"]["edges"], data
