"""`shop dev` on a fresh data folder: GraphiQL within 60 s, a full flow, a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import psutil

from app.settings import Settings
from tests.conftest import GENEROUS_THROTTLES, PASSWORD
from tests.support import (
    CREATE_PRODUCT,
    LOG_IN,
    PLACE_ORDER,
    SIGN_UP,
    GraphQLClient,
    free_port,
    unique,
)

STARTUP_BUDGET_S = 60
COMMAND_BUDGET_S = 120
STOP_BUDGET_S = 30


def _env(settings: Settings, data_dir: Path, port: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "MONGODB_URL", "REDIS_URL"}
    }
    env |= {"DATA_DIR": str(data_dir), "PORT": str(port), "REDIS_PREFIX": settings.redis_prefix}
    # The session's sign-ups and log-ins from 127.0.0.1 count in this Redis prefix too.
    env |= {name.upper(): str(limit) for name, limit in GENEROUS_THROTTLES.items()}
    # URLs the user configured stay configured (nothing is started for them); this run's own
    # database then stands in for theirs.
    if os.environ.get("DATABASE_URL") and settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    for name in ("MONGODB_URL", "REDIS_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


async def _wait_for_line(stream: asyncio.StreamReader, needle: str, deadline: float) -> list[str]:
    seen: list[str] = []
    while True:
        line = await asyncio.wait_for(stream.readline(), max(deadline - time.monotonic(), 0.1))
        if not line:
            raise AssertionError("shop dev exited early:\n" + "".join(seen[-30:]))
        seen.append(line.decode(errors="replace"))
        if needle in seen[-1]:
            return seen


async def test_shop_dev_serves_graphiql_and_a_full_flow_then_stops_cleanly(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = _env(settings, tmp_path / "devdata", port)
    started = time.monotonic()
    dev = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "dev", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert dev.stderr is not None
    tree: list[int] = []
    try:
        await _wait_for_line(dev.stderr, "Application startup complete", started + STARTUP_BUDGET_S)
        drain = asyncio.create_task(_drain(dev.stderr))
        tree += [dev.pid, *(p.pid for p in psutil.Process(dev.pid).children(recursive=True))]

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            page = await http.get("/graphql", headers={"Accept": "text/html"})
            assert page.status_code == 200
            assert "graphiql" in page.text.lower()
            assert time.monotonic() - started < STARTUP_BUDGET_S

            admin_email = f"{unique('devadmin')}@example.com"
            created = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app.cli", "admin", "create",
                "--email", admin_email, "--name", "Dev Admin", "--password", PASSWORD,
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            # Bounded: a command that hangs (or a child of it holding its pipes) fails here.
            out, err = await asyncio.wait_for(created.communicate(), COMMAND_BUDGET_S)
            assert created.returncode == 0, err.decode()
            assert admin_email in out.decode()

            client = GraphQLClient(http)
            admin = await client.data(
                LOG_IN, {"input": {"email": admin_email, "password": PASSWORD}}
            )
            admin_token = admin["logIn"]["token"]
            product = await client.data(
                CREATE_PRODUCT,
                {"input": {"sku": unique("DEV"), "name": "Dev mug", "priceCents": 900, "stock": 3}},
                admin_token,
            )
            customer = await client.data(
                SIGN_UP,
                {
                    "input": {
                        "email": f"{unique('devc')}@example.com",
                        "name": "Dee",
                        "password": PASSWORD,
                    }
                },
            )
            order = await client.data(
                PLACE_ORDER,
                {
                    "input": {
                        "lines": [
                            {"productId": product["createProduct"]["product"]["id"], "quantity": 2}
                        ]
                    }
                },
                customer["signUp"]["token"],
            )
            assert order["placeOrder"]["__typename"] == "OrderSuccess"
            assert order["placeOrder"]["order"]["totalCents"] == 1800

        dev.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(dev.wait(), STOP_BUDGET_S) == 0
        # EOF on stderr means no process of the tree still holds shop dev's stderr.
        await asyncio.wait_for(drain, STOP_BUDGET_S)
        processes = [p for p in map(_proc, tree) if p is not None]
        _, alive = psutil.wait_procs(processes, timeout=15)
        assert alive == [], f"still running after shop dev stopped: {alive}"
    finally:
        if dev.returncode is None:
            dev.kill()
            await dev.wait()
        # A failed run must not leave a worker on this session's database and Redis prefix.
        for leftover in filter(None, map(_proc, tree)):
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()


def _proc(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
