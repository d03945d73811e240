"""`shop worker --processes N` runs N workers and brings back one that dies; SIGTERM stops
them all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import psutil
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.pipeline import Pipeline, WorkerLog, Writer

BUDGET_S = 60
STARTED = re.compile(r'"message":"(worker \d) started as pid (\d+)"')


def pids(log: WorkerLog) -> dict[str, int]:
    """The latest pid of each supervised worker, as the supervisor logged them."""
    found: dict[str, int] = {}
    for line in log.lines:
        if match := STARTED.search(line):
            found[match[1]] = int(match[2])
    return found


async def test_n_supervised_workers_and_a_killed_one_comes_back(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", "--processes", "2",
        env=pipeline.env(), stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stderr is not None
    log = WorkerLog(process)
    log._reader = asyncio.get_running_loop().create_task(log._read(process.stderr))
    pipeline.workers.append(process)

    first = await log.wait_for('"message":"worker ', ' started"', budget_s=BUDGET_S)
    await log.wait_for('"message":"worker ', ' started"', after=first + 1, budget_s=BUDGET_S)
    workers = pids(log)
    assert sorted(workers) == ["worker 1", "worker 2"]
    children = {child.pid for child in psutil.Process(process.pid).children()}
    assert set(workers.values()) == children

    mark = len(log.lines)
    os.kill(workers["worker 1"], signal.SIGKILL)
    await log.wait_for(
        f'"message":"worker 1 (pid {workers["worker 1"]}) exited with signal SIGKILL after ',
        "; restarting it in 0.5 s (restart 1)",
        after=mark,
        budget_s=BUDGET_S,
    )
    await log.wait_for('"message":"worker ', ' started"', after=mark, budget_s=BUDGET_S)
    assert pids(log)["worker 1"] != workers["worker 1"]
    assert pids(log)["worker 2"] == workers["worker 2"]

    assert pipeline.settings.redis_url is not None
    writer = Writer(engine, pipeline.settings.redis_url, pipeline.settings.redis_prefix)
    try:
        placed = await writer.place(await writer.sign_up(), await writer.product())
    finally:
        await writer.close()
    await pipeline.wait_until_projected(placed.position)

    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children()]
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), BUDGET_S) == 0
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert alive == []
    assert not [line for line in log.lines if "restarting it" in line][1:], log.tail()
