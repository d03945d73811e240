"""`shop serve --processes N`: N API processes answer on one port, /metrics adds up all of
them, one killed with SIGKILL is started again while the others keep serving, and SIGTERM
stops them all and removes the metrics directory it made."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import psutil
import pytest

from tests.faults.api_servers import ApiServer, HeldConnection, api_server, owner_of
from tests.pipeline import Pipeline
from tests.shop_api import PRODUCT_UPDATED
from tests.support import TRANSPORT_WS, Scrape, graphql_ws, scrape_metrics, until

BUDGET_S = 60
# Connections opened, at most, before each process has accepted one (the kernel spreads
# them over per-process sockets, or wakes whichever process waits on a shared one).
MOST_CONNECTIONS = 200
COUNTED = "query ProcessCount { __typename }"


async def one_connection_per_process(
    server: ApiServer, pids: list[int]
) -> dict[int, HeldConnection]:
    held: dict[int, HeldConnection] = {}
    spare: list[HeldConnection] = []
    for _ in range(MOST_CONNECTIONS):
        conn = await HeldConnection.open(server.base_url)
        await conn.query("{ __typename }")  # accepted and answered: the owner holds it now
        owner = owner_of(conn.local_port, pids)
        assert owner is not None, f"no API process holds port {conn.local_port}"
        if owner in held:
            spare.append(conn)
        else:
            held[owner] = conn
        if len(held) == len(pids):
            break
    for conn in spare:
        await conn.close()
    assert sorted(held) == sorted(pids), f"only {sorted(held)} of {pids} accepted connections"
    return held


def is_dir(path: str) -> bool:
    """A stat of a local directory: too quick to hand to a thread."""
    return Path(path).is_dir()


def counted(scrape: Scrape) -> float:
    return scrape.total("shop_graphql_requests_total", operation="ProcessCount")


@pytest.mark.parametrize("sockets", ["per_process", "shared"])
async def test_api_processes_share_a_port_and_metrics_and_a_killed_one_comes_back(
    pipeline: Pipeline, sockets: str
) -> None:
    async with (
        api_server(pipeline, "--processes", "2", extra_env={"LISTEN_SOCKETS": sockets}) as server,
        AsyncExitStack() as stack,
    ):
        pids = server.children()
        assert len(pids) == 2
        metrics_dir = psutil.Process(pids[0]).environ()["PROMETHEUS_MULTIPROC_DIR"]
        assert is_dir(metrics_dir)
        held = await one_connection_per_process(server, pids)
        for conn in held.values():
            stack.push_async_callback(conn.close)
            for _ in range(3):
                assert (await conn.query(COUNTED))["data"] == {"__typename": "Query"}

        if sockets == "per_process":
            # A burst of connections (a client's pool filling up) lands on both processes:
            # the kernel hashes each over the sockets (all on one: a chance of 2 in 2^16).
            burst = await asyncio.gather(*(HeldConnection.open(server.base_url) for _ in range(16)))
            for conn in burst:
                stack.push_async_callback(conn.close)
            await asyncio.gather(*(conn.query("{ __typename }") for conn in burst))
            assert {owner_of(conn.local_port, pids) for conn in burst} == set(pids)

        # Whichever process answers /metrics, it counts every process's operations.
        for conn in held.values():
            status, body = await conn.request("GET", "/metrics")
            assert status == 200
            assert b'shop_graphql_requests_total{kind="query",operation="ProcessCount"' in body
        assert counted(await scrape_metrics(server.http)) == 6

        # A subscriber on the process about to die shows in the live gauge.
        victim, survivor = pids
        for _ in range(MOST_CONNECTIONS):
            ws = await stack.enter_async_context(graphql_ws(server.base_url, TRANSPORT_WS, {}))
            if owner_of(ws.conn.local_address[1], pids) == victim:
                break
        op_id = await ws.subscribe(PRODUCT_UPDATED)
        await ws.sync()
        # The gauge goes up once the subscription runs, a moment after the round trip.
        await until(
            lambda: scrape_metrics(server.http),
            lambda scrape: scrape.total("shop_graphql_subscriptions_open") == 1,
        )

        mark = len(server.log.lines)
        os.kill(victim, signal.SIGKILL)
        await ws.closed()  # the subscriber sees its process go
        await server.log.wait_for(
            f"(pid {victim}) exited with signal SIGKILL after ", "restarting it in 0.5 s",
            after=mark, budget_s=BUDGET_S,
        )  # fmt: skip
        # Meanwhile the survivor serves, on the connection it holds and on new ones.
        assert (await held[survivor].query(COUNTED))["data"] == {"__typename": "Query"}
        assert counted(await scrape_metrics(server.http)) == 7

        started = await server.log.wait_for("started as pid", after=mark, budget_s=BUDGET_S)
        await server.log.wait_for("Application startup complete.", after=started, budget_s=BUDGET_S)
        restarted = [pid for pid in server.children() if pid != survivor]
        assert len(restarted) == 1, server.children()
        assert restarted[0] != victim
        fresh = await one_connection_per_process(server, [survivor, *restarted])
        for conn in fresh.values():
            stack.push_async_callback(conn.close)
        assert (await fresh[restarted[0]].query(COUNTED))["data"] == {"__typename": "Query"}
        scrape = await scrape_metrics(server.http)
        # The dead process's counts stay (counters never go back); its subscriber is gone.
        assert counted(scrape) == 8
        assert scrape.total("shop_graphql_subscriptions_open") == 0
        assert op_id

        # SIGTERM: each process shuts down gracefully, telling its subscribers to come back
        # (1012, service restart) instead of dropping them.
        listening = await stack.enter_async_context(graphql_ws(server.base_url, TRANSPORT_WS, {}))
        await listening.subscribe(PRODUCT_UPDATED)
        await listening.sync()
        tree = [psutil.Process(server.process.pid), *map(psutil.Process, server.children())]
        server.process.send_signal(signal.SIGTERM)
        assert await listening.closed(BUDGET_S) == 1012
        assert await server.process.wait() == 0
        _, alive = psutil.wait_procs(tree, timeout=BUDGET_S)
        assert alive == []
    assert not is_dir(metrics_dir)
    restarts = [line for line in server.log.lines if "restarting it" in line]
    assert len(restarts) == 1, restarts
    errors = [json.loads(line) for line in server.log.lines if '"level":"ERROR"' in line]
    assert errors == []
