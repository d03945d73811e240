"""`shop serve` run as real processes for the fault tests: their log line by line, an HTTP
client for each, and the pid of the process that holds a given client connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psutil

from tests.pipeline import Pipeline, WorkerLog
from tests.support import GraphQLClient, free_port

STARTUP_BUDGET_S = 60
STOP_BUDGET_S = 30
# uvicorn logs this once it listens (a lone `shop serve`), or, for `--processes N` whose
# socket listens from the start, once each child's lifespan has started.
LISTENING = "Uvicorn running on http://"
STARTED = "Application startup complete."


@dataclass
class ApiServer:
    """One `shop serve` command: its process, its log and a GraphQL client on its port."""

    process: asyncio.subprocess.Process
    log: WorkerLog
    base_url: str
    client: GraphQLClient

    @property
    def http(self) -> httpx.AsyncClient:
        return self.client.http

    def children(self) -> list[int]:
        """The pids of the API processes it supervises (`--processes N`)."""
        return [child.pid for child in psutil.Process(self.process.pid).children()]


def api_env(
    pipeline: Pipeline, port: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    return pipeline.env() | {"HOST": "127.0.0.1", "PORT": str(port)} | dict(extra or {})


@asynccontextmanager
async def api_server(
    pipeline: Pipeline, *args: str, extra_env: Mapping[str, str] | None = None
) -> AsyncIterator[ApiServer]:
    """`shop serve ARGS...` on a free port of 127.0.0.1 over the pipeline's stores, yielded
    once every process it runs has started; stopped with SIGTERM (or found dead) after."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", *args,
        env=api_env(pipeline, port, extra_env),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    log = WorkerLog(process)
    log._reader = asyncio.get_running_loop().create_task(log._read(process.stderr))
    base_url = f"http://127.0.0.1:{port}"
    try:
        processes = int(args[args.index("--processes") + 1]) if "--processes" in args else 1
        if processes == 1:
            await log.wait_for(LISTENING, budget_s=STARTUP_BUDGET_S)
        else:
            after = 0
            for _ in range(processes):
                after = 1 + await log.wait_for(STARTED, after=after, budget_s=STARTUP_BUDGET_S)
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            yield ApiServer(process, log, base_url, GraphQLClient(http))
    finally:
        await stop(process)
        await log._reader


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL past STOP_BUDGET_S; nothing once it has exited."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_BUDGET_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"shop serve (pid {process.pid}) ignored SIGTERM") from None


@asynccontextmanager
async def api_servers(
    pipeline: Pipeline, count: int, extra_env: Mapping[str, str] | None = None
) -> AsyncIterator[list[ApiServer]]:
    """`count` separate `shop serve` processes, each on a port of its own."""
    async with AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(api_server(pipeline, extra_env=extra_env))
            for _ in range(count)
        ]
        yield servers


def owner_of(local_port: int, candidates: list[int]) -> int | None:
    """Which of the `candidates` processes holds the server end of our connection from
    `local_port` (the kernel chose the process that accepted it)."""
    for pid in candidates:
        for conn in psutil.Process(pid).net_connections("tcp"):
            if conn.raddr and conn.raddr.port == local_port:
                return pid
    return None


class HeldConnection:
    """One keep-alive HTTP/1.1 connection, so a test knows which process answers it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.local_port: int = writer.get_extra_info("sockname")[1]

    @classmethod
    async def open(cls, base_url: str) -> HeldConnection:
        host, _, port = base_url.removeprefix("http://").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """The status and body of one request on this connection."""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        async with asyncio.timeout(60):
            status_line, *headers = (await self._reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
            length = next(
                int(value)
                for name, _, value in (line.partition(b":") for line in headers)
                if name.strip().lower() == b"content-length"
            )
            return int(status_line.split()[1]), await self._reader.readexactly(length)

    async def query(self, document: str) -> dict[str, Any]:
        status, body = await self.request(
            "POST", "/graphql", json.dumps({"query": document}).encode()
        )
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
