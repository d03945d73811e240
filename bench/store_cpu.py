"""The stores' CPU behind a round: PostgreSQL backends of the bench's database, and mongod.

PostGraphile builds its JSON in PostgreSQL, the API and the raw route read MongoDB: the
server process's CPU alone leaves each side's store work out, so B1 also shows what the
stores spent per request. Only one server is loaded at a time, so each round's store CPU
is that server's. PostgreSQL may be shared with other work (tests on the same server),
so only the backends connected to the bench's own database count; MongoDB counts whole
(the bench's embedded one, or its URL's). A store that is not a process on this machine
(or that psutil may not read) reports nan: the figure is then shown as n/a.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

import asyncpg
import psutil
from sqlalchemy.engine import make_url

from app.settings import Settings
from bench.stack import libpq

MONGODB_PORT = 27017


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process; nan once it is gone or unreadable."""
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return math.nan
    return float(times.user + times.system)


@dataclass(frozen=True)
class StoreCpu:
    """Reads the CPU seconds the stores have spent so far, per process."""

    database_url: str
    database: str
    mongod: int | None

    @classmethod
    def of(cls, settings: Settings) -> StoreCpu:
        assert settings.database_url is not None
        assert settings.mongodb_url is not None
        database = make_url(settings.database_url).database
        assert database, "the bench's PostgreSQL URL names its own database"
        return cls(libpq(settings.database_url), database, _mongod_pid(settings.mongodb_url))

    async def sample(self) -> dict[int, float]:
        """CPU seconds by pid: the bench database's PostgreSQL backends, and mongod (nan
        where it is not a process of this machine)."""
        conn = await asyncpg.connect(self.database_url)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.database,
            )
        finally:
            await conn.close()
        seconds = {row["pid"]: cpu_seconds(row["pid"]) for row in rows}
        return seconds | {-1: math.nan if self.mongod is None else cpu_seconds(self.mongod)}


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two samples (nan if any process could not be read).

    A backend that started in between counts from 0 (its start-up is part of the load);
    one that ended in between is lost, but pools keep theirs open under load.
    """
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _mongod_pid(url: str) -> int | None:
    """The process listening at the first host of a mongodb:// URL, if it is this machine."""
    hosts = urlsplit(url).netloc.rsplit("@", 1)[-1]
    first = urlsplit("//" + hosts.split(",", 1)[0])
    if not _is_loopback(first.hostname or "localhost"):
        return None
    port = first.port or MONGODB_PORT
    try:
        connections = psutil.net_connections("tcp")
    except psutil.AccessDenied:
        return None
    for conn in connections:
        listens = conn.status == psutil.CONN_LISTEN and bool(conn.laddr)
        if listens and conn.laddr.port == port and conn.pid:  # type: ignore[union-attr]
            return conn.pid
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
