"""The embedded servers, for real: each test starts its own in its own data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import IO, Any

import asyncpg
import psutil
import pytest
import redis.asyncio
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from app.bootstrap import build_mongo, load_settings
from app.embedded import EmbeddedServiceError, EmbeddedUrls, _state, embedded_services

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVER_NAMES = {"postgres", "mongod", "redis-server"}

# Another process using the servers: joins, prints the URLs, leaves at end of stdin.
CLIENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from app.embedded import embedded_services

    with embedded_services(Path(sys.argv[1]), postgres=True, mongo=True, redis=True) as urls:
        print(urls.database_url, urls.mongodb_url, urls.redis_url, flush=True)
        sys.stdin.readline()
    """
)


class ClientProcess:
    """A second process holding the data dir's servers until leave() (or kill())."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )
        self.urls = EmbeddedUrls(*self._stdout.readline().split())

    @property
    def _stdout(self) -> IO[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def leave(self) -> None:
        with self.proc:  # closes the pipes and waits
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        assert self.proc.returncode == 0

    def kill(self) -> None:
        with self.proc:
            self.proc.kill()


def servers(data_dir: Path) -> dict[str, psutil.Process]:
    """The running servers as the state file records them."""
    records = _state.load(data_dir)
    return {name: psutil.Process(r.server.pid) for name, r in records.items() if r.server}


def running_in(data_dir: Path) -> list[psutil.Process]:
    """Every server process (postgres backends included) working on data_dir's files."""
    found = []
    for proc in psutil.process_iter(["name", "cwd", "cmdline", "status"]):
        info = proc.info
        if info["name"] not in SERVER_NAMES or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(str(data_dir) in part for part in [info["cwd"] or "", *(info["cmdline"] or [])]):
            found.append(proc)
    return found


def gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def listening(proc: psutil.Process) -> list[str]:
    return [c.laddr.ip for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN]


async def check_postgres(url: str | None) -> None:
    assert url is not None
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_database()") == "shop"
    finally:
        await conn.close()


async def check_redis(url: str | None) -> None:
    assert url is not None
    client = redis.asyncio.Redis.from_url(url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def insert_then_fail(db: AsyncDatabase[dict[str, Any]], session: AsyncClientSession) -> None:
    async with await session.start_transaction():
        await db.orders.insert_one({"_id": 2}, session=session)
        raise RuntimeError("abort")


async def check_mongo(url: str | None) -> None:
    """A replica-set primary on which multi-document transactions commit and abort."""
    assert url is not None
    client = build_mongo(load_settings(mongodb_url=url), patient=True)
    try:
        hello = await client.admin.command("hello")
        assert hello["isWritablePrimary"]
        assert hello["setName"] == "rs0"
        db = client["embedded_test"]
        async with client.start_session() as session:
            async with await session.start_transaction():
                await db.orders.insert_one({"_id": 1}, session=session)
                await db.stock.insert_one({"_id": 1, "left": 4}, session=session)
            with pytest.raises(RuntimeError, match="abort"):
                await insert_then_fail(db, session)
        assert await db.orders.distinct("_id") == [1]
        assert await db.stock.count_documents({}) == 1
    finally:
        await client.close()


async def test_fresh_data_dir_starts_all_three_on_loopback(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with embedded_services(data_dir, postgres=True, mongo=True, redis=True) as urls:
        procs = servers(data_dir)
        assert set(procs) == {"postgres", "mongo", "redis"}
        await check_postgres(urls.database_url)
        await check_redis(urls.redis_url)
        await check_mongo(urls.mongodb_url)
        assert listening(procs["postgres"]) == []  # unix socket only
        assert listening(procs["mongo"]) == ["127.0.0.1"]
        assert listening(procs["redis"]) == ["127.0.0.1"]
    assert all(gone(p) for p in procs.values())
    assert running_in(data_dir) == []
    assert {name: r.clients for name, r in _state.load(data_dir).items()} == {
        "postgres": [],
        "mongo": [],
        "redis": [],
    }


async def test_clients_share_the_servers_until_the_last_one_leaves(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    other = ClientProcess(data_dir)
    procs = servers(data_dir)
    with embedded_services(data_dir, postgres=True, mongo=True, redis=True) as urls:
        assert urls == other.urls
        with embedded_services(data_dir, postgres=True, mongo=False, redis=True) as inner:
            assert inner == EmbeddedUrls(urls.database_url, None, urls.redis_url)
        assert servers(data_dir) == procs
        other.leave()
        assert not any(gone(p) for p in procs.values())
        await check_postgres(urls.database_url)
        await check_redis(urls.redis_url)
        await check_mongo(urls.mongodb_url)
    assert all(gone(p) for p in procs.values())
    assert running_in(data_dir) == []


async def test_stale_state_is_recovered(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # A user killed outright: its servers run on and are reused, then stopped by the last user.
    crashed = ClientProcess(data_dir)
    procs = servers(data_dir)
    crashed.kill()
    with embedded_services(data_dir, postgres=True, mongo=True, redis=True) as urls:
        assert servers(data_dir) == procs
        assert urls == crashed.urls
    assert all(gone(p) for p in procs.values())

    # Everything killed, as by a reboot: dead pids in the state file, a stale postmaster.pid.
    crashed = ClientProcess(data_dir)
    procs = servers(data_dir)
    crashed.kill()
    for proc in procs.values():
        os.killpg(proc.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(list(procs.values()), timeout=10)
    assert alive == []
    assert (data_dir / "postgres" / "pgdata" / "postmaster.pid").exists()
    with embedded_services(data_dir, postgres=True, mongo=True, redis=True) as urls:
        fresh = servers(data_dir)
        assert {p.pid for p in fresh.values()}.isdisjoint(p.pid for p in procs.values())
        await check_postgres(urls.database_url)
        await check_redis(urls.redis_url)
        await check_mongo(urls.mongodb_url)
    assert running_in(data_dir) == []


async def test_only_the_services_asked_for_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with embedded_services(data_dir, postgres=True, mongo=False, redis=False) as urls:
        assert urls.mongodb_url is None
        assert urls.redis_url is None
        await check_postgres(urls.database_url)
        assert set(servers(data_dir)) == {"postgres"}
        assert {p.name() for p in running_in(data_dir)} == {"postgres"}
    assert not (data_dir / "mongo").exists()
    assert not (data_dir / "redis").exists()


def test_a_failed_start_raises_and_stops_what_it_started(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with embedded_services(data_dir, postgres=True, mongo=False, redis=False):
        pass
    with (data_dir / "postgres" / "pgdata" / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'plenty'\n")
    expected = r"(?s)PostgreSQL could not start: postgres exited with code 1 .*plenty.*DATABASE_URL"
    with (
        pytest.raises(EmbeddedServiceError, match=expected),
        embedded_services(data_dir, postgres=True, mongo=False, redis=True),
    ):
        pytest.fail("must not get here")
    assert running_in(data_dir) == []
    assert servers(data_dir) == {}
