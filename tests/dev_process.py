"""`shop dev` run as a user runs it, for tests: its log line by line, the child pids it
reports, and a Pipeline on the read side it serves.

MongoDB and Redis are always the embedded ones, in the test's own data dir, so a test may
kill and restart them; PostgreSQL is the run's own database.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from redis.asyncio import Redis

from app.bootstrap import build_mongo
from app.embedded import _state
from app.settings import Settings
from tests.pipeline import Pipeline, WorkerLog
from tests.support import free_port, run_command

STARTUP_BUDGET_S = 120
STOP_BUDGET_S = 60
URL_LINE = "GraphiQL: http://"


@dataclass
class DevShop:
    process: asyncio.subprocess.Process
    log: WorkerLog
    env: dict[str, str]
    data_dir: Path
    base_url: str
    pipeline: Pipeline

    def pid_of(self, child: str, after: int = 0) -> int:
        """The pid of the latest `child` ("API", "worker") that shop dev started from `after` on."""
        pattern = re.compile(rf'"message":"{child} started as pid (\d+)"')
        pids = [int(m[1]) for line in self.log.lines[after:] if (m := pattern.search(line))]
        assert pids, f"shop dev started no {child}:\n{self.log.tail()}"
        return pids[-1]

    def index(self, *needles: str) -> int:
        """The index of the first line holding every needle."""
        for index, line in enumerate(self.log.lines):
            if all(needle in line for needle in needles):
                return index
        raise AssertionError(f"shop dev never logged {needles}:\n{self.log.tail()}")

    def tree(self) -> list[psutil.Process]:
        """shop dev, its children and the embedded servers it started."""
        procs = [psutil.Process(self.process.pid)]
        procs += psutil.Process(self.process.pid).children(recursive=True)
        for record in _state.load(self.data_dir).values():
            if record.server is not None and record.server.alive():
                procs.append(psutil.Process(record.server.pid))
        return procs


def dev_env(settings: Settings, data_dir: Path, port: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL", "LOG_LEVEL"}
    }
    assert settings.database_url is not None
    return env | {
        "DATA_DIR": str(data_dir),
        "PORT": str(port),
        "DATABASE_URL": settings.database_url,
        "MONGODB_DATABASE": settings.mongodb_database,
        "REDIS_PREFIX": settings.redis_prefix,
    }


@asynccontextmanager
async def dev_shop(settings: Settings, tmp_path: Path) -> AsyncIterator[DevShop]:
    """`shop dev` on a fresh data dir, yielded once it printed the GraphiQL URL; stopped
    with SIGTERM afterwards unless the test stopped it."""
    port = free_port()
    data_dir = tmp_path / "devdata"
    env = dev_env(settings, data_dir, port)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "dev",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    log = WorkerLog(process)
    log._reader = asyncio.get_running_loop().create_task(log._read(process.stderr))
    pipeline: Pipeline | None = None
    try:
        await log.wait_for(URL_LINE, budget_s=STARTUP_BUDGET_S)
        records = _state.load(data_dir)
        own = settings.model_copy(
            update={"mongodb_url": records["mongo"].url, "redis_url": records["redis"].url}
        )
        assert own.redis_url is not None
        mongo = build_mongo(own, patient=True)
        pipeline = Pipeline(own, mongo, mongo[own.mongodb_database], Redis.from_url(own.redis_url))
        yield DevShop(process, log, env, data_dir, f"http://127.0.0.1:{port}", pipeline)
    finally:
        if pipeline is not None:
            await pipeline.redis.aclose()
            await pipeline.mongo.close()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_BUDGET_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        if log._reader is not None:
            await log._reader


async def run_shop(
    env: Mapping[str, str], *args: str, budget_s: float = 120
) -> tuple[int, str, str]:
    """`shop ARGS...` with env as given: (exit code, stdout, stderr)."""
    return await run_command(sys.executable, "-m", "app.cli", *args, env=env, budget_s=budget_s)
