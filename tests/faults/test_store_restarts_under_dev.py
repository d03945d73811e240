"""Redis and MongoDB restarted by hand under a running `shop dev` (stopped, then started
again on the same port and files): the worker never exits, and an operator command run
afterwards uses the restarted servers as they are instead of stopping or moving them.

Before issue 10, arq's poll loop raised redis' WatchError and the worker exited; and
`shop projections status` judged the hand-restarted servers "left without a record",
killed them and started new ones on new ports, leaving the API and worker on dead ports.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from sqlalchemy.ext.asyncio import AsyncEngine

from app.embedded import _state
from app.settings import Settings
from tests.dev_process import DevShop, dev_shop, run_shop
from tests.pipeline import ALL, Writer, shop
from tests.support import GraphQLClient

OUTAGE_BUDGET_S = 90
PRODUCT_QUERY = "query($id: ID!) { node(id: $id) { ... on Product { id stock } } }"


async def test_the_worker_outlives_redis_and_mongodb_restarts_and_status_keeps_them(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    with _hand_started_servers() as by_hand:
        async with dev_shop(settings, tmp_path) as dev:
            assert dev.pipeline.settings.redis_url is not None
            writer = Writer(engine, dev.pipeline.settings.redis_url, settings.redis_prefix)
            try:
                await _restart_the_stores(dev, writer, by_hand)
            finally:
                await writer.close()


@contextmanager
def _hand_started_servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        # shop dev, stopped first, stops what was adopted; these are only the stragglers.
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _restart_by_hand(argv: list[str], by_hand: list[subprocess.Popen[bytes]]) -> int:
    """Start a server again with the very command line it ran with, as an operator would."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    by_hand.append(proc)
    return proc.pid


async def _restart_the_stores(
    dev: DevShop, writer: Writer, by_hand: list[subprocess.Popen[bytes]]
) -> None:
    customer = await writer.sign_up()
    product = await writer.product(stock=1000)
    before = await writer.place(customer, product)
    await dev.pipeline.wait_until_projected(before.position)
    worker = dev.pid_of("worker")
    records = _state.load(dev.data_dir)
    servers = {name: records[name].server for name in ("redis", "mongo")}
    urls = {name: records[name].url for name in ("redis", "mongo")}
    assert servers["redis"] is not None
    assert servers["mongo"] is not None
    redis_dir = dev.data_dir / "redis"
    argvs = {
        # redis-server rewrites its command line: start it as app.embedded.redis does.
        "redis": [
            psutil.Process(servers["redis"].pid).exe(),
            *("--bind", "127.0.0.1", "--port", str(records["redis"].port), "--save", ""),
            *("--appendonly", "no", "--daemonize", "no", "--dir", str(redis_dir)),
            *("--pidfile", str(redis_dir / "redis.pid")),
        ],
        "mongo": psutil.Process(servers["mongo"].pid).cmdline(),
    }

    mark = len(dev.log.lines)
    for server in servers.values():
        assert server is not None
        os.kill(server.pid, signal.SIGKILL)
    # Orders are still accepted meanwhile (each nudge gives up in bounded time).
    while_down = [await writer.place(customer, product) for _ in range(3)]
    await dev.log.wait_for(
        '"message":"the worker lost Redis (', after=mark, budget_s=OUTAGE_BUDGET_S
    )
    redis_pid = _restart_by_hand(argvs["redis"], by_hand)
    # Back with Redis, the worker's next start meets MongoDB down: it starts over again.
    await dev.log.wait_for(
        '"message":"the worker lost MongoDB (', after=mark, budget_s=OUTAGE_BUDGET_S
    )
    back = len(dev.log.lines)
    mongo_pid = _restart_by_hand(argvs["mongo"], by_hand)
    await dev.log.wait_for('"message":"worker ', ' started"', after=back, budget_s=OUTAGE_BUDGET_S)

    after = await writer.place(customer, product)
    await dev.pipeline.wait_until_projected(after.position, budget_s=OUTAGE_BUDGET_S)
    # One worker process throughout: it started over inside, shop dev restarted nothing.
    assert dev.pid_of("worker") == worker
    assert psutil.pid_exists(worker)
    assert not [line for line in dev.log.lines[mark:] if "exited with" in line], dev.log.tail()

    # An operator command joins the servers through the data dir: it uses them as they are.
    code, out, err = await run_shop(dev.env, "projections", "status")
    assert code == 0, err
    assert "left without a record" not in err
    assert "does not answer" not in err
    for title in ("Redis", "MongoDB"):
        assert f"Using embedded {title} at " in err
    assert err.count("restarted outside the project") == 2, err
    assert {row.split()[0] for row in out.splitlines()[1:]} == set(ALL)
    adopted = _state.load(dev.data_dir)
    assert {name: adopted[name].url for name in urls} == urls
    assert {name: rec.server.pid for name, rec in adopted.items() if rec.server} == {
        "redis": redis_pid,
        "mongo": mongo_pid,
    }
    assert all(proc.poll() is None for proc in by_hand)

    # The running API still reads from MongoDB, and the worker still projects.
    latest = await writer.place(customer, product)
    await dev.pipeline.wait_until_projected(latest.position, budget_s=OUTAGE_BUDGET_S)
    async with httpx.AsyncClient(base_url=dev.base_url, timeout=30) as http:
        data = await GraphQLClient(http).data(PRODUCT_QUERY, {"id": product})
    assert data["node"]["stock"] == 1000 - 1 - len(while_down) - 2
    for committed in [before, *while_down, after, latest]:
        order = await dev.pipeline.db["orders"].find_one({"_id": str(committed.value.id)})
        assert order is not None, f"order {committed.value.id} was lost"
    code, out, err = await shop(dev.pipeline, "projections", "verify", "--all")
    assert (code, out) == (0, ""), err
