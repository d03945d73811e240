"""`shop dev`: the stores (embedded where no URL is set), migrations, then the API and a
worker, started together and kept running; the GraphiQL URL is printed once the API answers.

Every start-up phase is logged with its duration ("start-up: ..."), so a slow start says
where the time went.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time

from app.process import resolved_settings
from app.seed import command as seed_command
from app.settings import Settings
from app.supervision import Child, ProcessSupervisor, joined_env, run_until_signalled
from writes.db import migrate

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.1
PROBE_TIMEOUT_S = 2.0
# What `shop worker` logs once its projections run (workers.settings.startup).
WORKER_STARTED = (b'"message":"worker ', b' started"')
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


def run(settings: Settings, _: argparse.Namespace) -> int:
    began = time.monotonic()
    with resolved_settings(settings, postgres=True, mongo=True, redis=True) as resolved:
        _phase("stores ready", began)
        assert resolved.database_url is not None
        mark = time.monotonic()
        migrate(resolved.database_url)
        _phase("migrations applied", mark)
        if seed_command.shop_is_empty(resolved):
            print(f"shop: {seed_command.EMPTY_SHOP_HINT}", file=sys.stderr)
        env = joined_env(resolved)
        startup = _Startup(began)
        supervisor = ProcessSupervisor(
            [Child("API", _shop("serve"), env), Child("worker", _shop("worker"), env)],
            resolved.restart_backoff_ms / 1000,
            resolved.restart_backoff_max_ms / 1000,
            on_line=startup.saw,
        )

        async def main(stop: asyncio.Event) -> None:
            await asyncio.gather(supervisor.run(stop), startup.announce(resolved, stop))

        run_until_signalled(main)
    return 0


def _shop(command: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", command]


def _phase(what: str, since: float) -> None:
    log.info("start-up: %s in %.2f s", what, time.monotonic() - since)


class _Startup:
    """Reports the API's and the worker's first start, and prints the URL once it answers."""

    def __init__(self, began: float) -> None:
        self._began = began
        self._spawned = time.monotonic()
        self._worker_started = False

    def saw(self, child: str, line: bytes) -> None:
        if self._worker_started or child != "worker":
            return
        if all(needle in line for needle in WORKER_STARTED):
            self._worker_started = True
            _phase("worker projecting", self._spawned)

    async def announce(self, settings: Settings, stop: asyncio.Event) -> None:
        host = "127.0.0.1" if settings.host in WILDCARD_HOSTS else settings.host
        self._spawned = time.monotonic()
        while not await api_answers(host, settings.port):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_INTERVAL_S):
                    await stop.wait()
            if stop.is_set():
                return
        _phase("API answered its first request", self._spawned)
        url = f"http://{settings.host}:{settings.port}/graphql"
        print(f"GraphiQL: {url}", file=sys.stderr, flush=True)
        _phase("ready", self._began)


async def api_answers(host: str, port: int) -> bool:
    """Whether the API at host:port answers a GraphQL request (`{ __typename }`) with 200."""
    body = b'{"query": "{ __typename }"}'
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(head.encode() + body)
                status = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    return status.split(b" ")[1:2] == [b"200"]
