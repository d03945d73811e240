"""The service under test, started the way `make dev` starts it, in namespaces of its own.

`bench_settings` joins (or starts) the embedded servers unless DATABASE_URL, MONGODB_URL
and REDIS_URL are set, creates a PostgreSQL database, a MongoDB database and a Redis
prefix for this run, migrates, and drops them all afterwards. `Stack` runs `shop serve`
and `shop worker` processes against them, and the load generator as a third process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import psutil
from sqlalchemy.engine import make_url

from app.bootstrap import build_sync_mongo, load_settings, running_stores
from app.settings import Settings
from writes.db import migrate

START_BUDGET_S = 120.0
STOP_BUDGET_S = 20.0


def libpq(url: str) -> str:
    """The SQLAlchemy URL as asyncpg/libpq take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_sql(url: str, statement: str) -> None:
    conn = await asyncpg.connect(libpq(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def bench_settings(base: Settings | None = None) -> Iterator[Settings]:
    """Migrated, empty stores of this run's own; gone afterwards."""
    name = f"shop_bench_{uuid.uuid4().hex[:8]}"
    with running_stores(base or load_settings(), postgres=True, mongo=True, redis=True) as found:
        assert found.database_url is not None
        assert found.mongodb_url is not None
        asyncio.run(_admin_sql(found.database_url, f'CREATE DATABASE "{name}"'))
        url = make_url(found.database_url).set(database=name).render_as_string(False)
        own = found.model_copy(
            update={"database_url": url, "mongodb_database": name, "redis_prefix": name}
        )
        try:
            migrate(url)
            yield own
        finally:
            asyncio.run(_admin_sql(found.database_url, f'DROP DATABASE "{name}" WITH (FORCE)'))
            with build_sync_mongo(found, patient=True) as client:
                client.drop_database(name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _wait_for_line(process: asyncio.subprocess.Process, *needles: bytes) -> None:
    """Return once the process logs a line with every needle; keep draining after."""
    stream = process.stderr or process.stdout
    assert stream is not None
    seen: list[bytes] = []

    async def read() -> None:
        while line := await stream.readline():
            seen.append(line)
            if all(needle in line for needle in needles):
                return
        raise RuntimeError("exited before it started:\n" + b"".join(seen[-20:]).decode())

    await asyncio.wait_for(read(), START_BUDGET_S)

    async def drain() -> None:
        while await stream.readline():
            pass

    asyncio.get_running_loop().create_task(drain())


@dataclass
class Stack:
    settings: Settings
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        s = self.settings
        assert s.database_url is not None
        assert s.mongodb_url is not None
        assert s.redis_url is not None
        return (
            os.environ
            | {
                "DATABASE_URL": s.database_url,
                "MONGODB_URL": s.mongodb_url,
                "REDIS_URL": s.redis_url,
                "MONGODB_DATABASE": s.mongodb_database,
                "REDIS_PREFIX": s.redis_prefix,
                "LOG_LEVEL": "WARNING",
                # The load generator's hundreds of subscribers all come from 127.0.0.1
                # (`shop serve` caps websocket frames at MAX_BODY_BYTES itself).
                "WS_MAX_CONNECTIONS_PER_ADDRESS": "10000",
            }
            | dict(extra or {})
        )

    async def start(
        self,
        *args: str,
        ready: tuple[bytes, ...],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        ready_on_stdout: bool = False,
    ) -> asyncio.subprocess.Process:
        """Start a server; return once a line of its log has every `ready` needle.

        Python servers log on stderr; one that prints its banner on stdout (PostGraphile)
        has stderr merged into that stream, so a failure's last lines still show.
        """
        out, err = asyncio.subprocess.DEVNULL, asyncio.subprocess.PIPE
        if ready_on_stdout:
            out, err = asyncio.subprocess.PIPE, asyncio.subprocess.STDOUT
        process = await asyncio.create_subprocess_exec(
            *args, env=self.env(env), cwd=cwd, stdout=out, stderr=err
        )
        self.processes.append(process)
        await _wait_for_line(process, *ready)
        return process

    async def api(
        self, env: Mapping[str, str] | None = None
    ) -> tuple[int, asyncio.subprocess.Process]:
        """`shop serve` (one process, uvloop + httptools) on a free port."""
        port = free_port()
        extra = {"PORT": str(port), "LOG_LEVEL": "INFO"} | dict(env or {})
        process = await self.start(
            sys.executable, "-m", "app.cli", "serve", ready=(b"Application startup complete",),
            env=extra,
        )  # fmt: skip
        return port, process

    async def worker(self, env: Mapping[str, str] | None = None) -> asyncio.subprocess.Process:
        return await self.start(
            sys.executable, "-m", "app.cli", "worker", ready=(b'"message":"worker ', b'started"'),
            env={"LOG_LEVEL": "INFO"} | dict(env or {}),
        )  # fmt: skip

    async def stop(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_BUDGET_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        with contextlib.suppress(ValueError):
            self.processes.remove(process)

    async def close(self) -> None:
        for process in list(self.processes):
            await self.stop(process)


@asynccontextmanager
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    running = Stack(settings)
    try:
        yield running
    finally:
        await running.close()


async def load(spec: dict[str, Any], module: str = "bench.http_load") -> dict[str, Any]:
    """Run a load generator (`python -m MODULE`, the spec on stdin) in its own process;
    its JSON result."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate(orjson.dumps(spec))
    if process.returncode != 0:
        raise RuntimeError(f"{module} failed with exit code {process.returncode}")
    result: dict[str, Any] = orjson.loads(out)
    return result


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total / 2**20
