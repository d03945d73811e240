"""embedded_services(): start or join the embedded servers, and stop them after their last user."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from app.embedded import _procs, _state
from app.embedded._procs import EmbeddedServiceError, ProcId, Server, Started
from app.embedded._state import Record
from app.embedded.mongo import MongoServer
from app.embedded.postgres import PostgresServer
from app.embedded.redis import RedisServer

logger = logging.getLogger(__name__)

# How long a server in use may take to answer before the call gives up on it (never
# stopping it): mongod needs seconds to become primary after a restart.
IN_USE_PATIENCE_S = 30.0
HEALTH_RETRY_S = 0.25

SERVERS: dict[str, Server] = {
    "postgres": PostgresServer(),
    "mongo": MongoServer(),
    "redis": RedisServer(),
}


@dataclass(frozen=True)
class EmbeddedUrls:
    """The URLs of the embedded servers; None for a service that was not asked for."""

    database_url: str | None
    mongodb_url: str | None
    redis_url: str | None


@contextlib.contextmanager
def embedded_services(
    data_dir: Path, *, postgres: bool, mongo: bool, redis: bool
) -> Iterator[EmbeddedUrls]:
    """Start (or join) the embedded servers asked for; yields their URLs; releases them on exit.

    Servers already running for data_dir (started by another process or an enclosing call)
    are shared; each is stopped when its last user leaves. Raises EmbeddedServiceError if a
    server cannot start, after stopping the ones this call started.
    """
    wanted = [
        name for name, on in (("postgres", postgres), ("mongo", mongo), ("redis", redis)) if on
    ]
    if not wanted:
        yield EmbeddedUrls(None, None, None)
        return
    data_dir = _prepare(data_dir)
    me = ProcId.of(os.getpid())
    assert me is not None
    urls = _join(data_dir, wanted, me)
    try:
        yield EmbeddedUrls(urls.get("postgres"), urls.get("mongo"), urls.get("redis"))
    finally:
        _leave(data_dir, wanted, me)


def _prepare(data_dir: Path) -> Path:
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    ignore = data_dir / ".gitignore"
    if not ignore.exists():
        # Keeps the data out of git even where the project's .gitignore does not list it.
        ignore.write_text("*\n")
    return data_dir


def _join(data_dir: Path, wanted: list[str], me: ProcId) -> dict[str, str]:
    with _state.locked(data_dir):
        _procs.reap()
        records = _state.load(data_dir)
        missing = [name for name in wanted if not _usable(data_dir, name, records.get(name))]
        try:
            _start(data_dir, missing, records)
        except BaseException:
            _state.save(data_dir, records)
            raise
        urls: dict[str, str] = {}
        for name in wanted:
            rec = records[name]
            rec.clients = [c for c in rec.clients if c.alive()] + [me]
            assert rec.url is not None
            urls[name] = rec.url
        _state.save(data_dir, records)
    return urls


def _usable(data_dir: Path, name: str, rec: Record | None) -> bool:
    """Whether the recorded server (or one restarted by hand on its files and port) answers.

    A server that processes still use is never judged dead in a hurry: this call waits for
    it to answer (a restarted mongod takes seconds to become primary), adopts it if it was
    restarted outside the project, and otherwise refuses to go on rather than stop or
    move a server from under its users. Only a server nobody uses may be restarted.
    """
    if rec is None or rec.url is None:
        return False
    server = SERVERS[name]
    running = rec.server if rec.server is not None and rec.server.alive() else None
    if running is None:
        running = server.leftover(data_dir / name)
        if running is None or (rec.port is not None and rec.port not in _procs.ports_of(running)):
            return False
    users = [client for client in rec.clients if client.alive()]
    if not _answers(server, rec.url, IN_USE_PATIENCE_S if users else 0.0):
        if users:
            pids = ", ".join(str(user.pid) for user in users)
            raise EmbeddedServiceError(
                f"The embedded {server.title} at {rec.url} (pid {running.pid}) does not answer, "
                f"and processes {pids} use it, so it is left running. Stop those processes (or "
                f"pid {running.pid}) and try again, or set {server.env_var} to use your own."
            )
        return False
    if rec.server is None or not rec.server.same_as(running):
        logger.warning(
            "Using embedded %s at %s, restarted outside the project as pid %d",
            server.title, rec.url, running.pid,
        )  # fmt: skip
        rec.server = running
    else:
        logger.info("Using the running embedded %s at %s", server.title, rec.url)
    return True


def _answers(server: Server, url: str, patience_s: float) -> bool:
    deadline = time.monotonic() + patience_s
    while not server.is_healthy(url):
        if time.monotonic() >= deadline:
            return False
        time.sleep(HEALTH_RETRY_S)
    return True


def _start(data_dir: Path, names: list[str], records: dict[str, Record]) -> None:
    """Starts the named servers in parallel, recording each; if any fails, stops the others."""
    if not names:
        return
    ports = _choose_ports(names, records)
    with ThreadPoolExecutor(len(names), thread_name_prefix="embedded-start") as pool:
        futures = {name: pool.submit(_start_one, data_dir, name, records, ports) for name in names}
    started: dict[str, Started] = {}
    errors: list[BaseException] = []
    for name, future in futures.items():
        rec = records.setdefault(name, Record())
        rec.server = None
        try:
            started[name] = future.result()
        except BaseException as exc:
            errors.append(exc)
        else:
            rec.server, rec.url, rec.port = started[name].server, started[name].url, ports[name]
            logger.info("Started embedded %s at %s", SERVERS[name].title, rec.url)
    if errors:
        for name, one in started.items():
            SERVERS[name].stop(one.server)
            records[name].server = None
        raise errors[0]


def _start_one(
    data_dir: Path, name: str, records: dict[str, Record], ports: dict[str, int | None]
) -> Started:
    server = SERVERS[name]
    service_dir = data_dir / name
    service_dir.mkdir(exist_ok=True)
    # A recorded server that no longer answers, and one left running without a record (the
    # state file was lost), both still hold the files the new server needs.
    rec = records.get(name)
    if rec is not None and rec.server is not None and rec.server.alive():
        logger.warning(
            "Restarting embedded %s: pid %d does not answer", server.title, rec.server.pid
        )
        server.stop(rec.server)
    leftover = server.leftover(service_dir)
    if leftover is not None:
        logger.warning(
            "Stopping embedded %s left without a record (pid %d)", server.title, leftover.pid
        )
        server.stop(leftover)
    began = time.monotonic()
    try:
        started = server.start(service_dir, ports[name])
    except EmbeddedServiceError:
        raise
    except Exception as exc:
        raise EmbeddedServiceError(
            f"{server.title} could not start: {exc}. "
            f"Set {server.env_var} to use your own {server.title} instead."
        ) from exc
    logger.info("start-up: embedded %s ready in %.2f s", server.title, time.monotonic() - began)
    return started


def _choose_ports(names: list[str], records: dict[str, Record]) -> dict[str, int | None]:
    # Chosen before the parallel starts so two servers never pick the same free port.
    ports: dict[str, int | None] = {}
    taken: set[int] = set()
    for name in names:
        if not SERVERS[name].uses_port:
            ports[name] = None
            continue
        old = records[name].port if name in records else None
        # The old port keeps URLs stable across restarts (and MongoDB's replica set config).
        if old and old not in taken and _procs.port_is_free(old):
            port = old
        else:
            port = _procs.free_port(taken)
        ports[name] = port
        taken.add(port)
    return ports


def _leave(data_dir: Path, wanted: list[str], me: ProcId) -> None:
    with _state.locked(data_dir):
        _procs.reap()
        records = _state.load(data_dir)
        to_stop: list[tuple[str, ProcId]] = []
        for name, rec in records.items():
            if name in wanted:
                mine = next((c for c in rec.clients if c.same_as(me)), None)
                if mine is not None:
                    rec.clients.remove(mine)
            # Clients that died without leaving (kill -9, crash) no longer hold a server.
            rec.clients = [c for c in rec.clients if c.alive()]
            if rec.server is not None and not rec.clients and name in SERVERS:
                to_stop.append((name, rec.server))
                rec.server = None
        if to_stop:
            with ThreadPoolExecutor(len(to_stop), thread_name_prefix="embedded-stop") as pool:
                stops = [pool.submit(SERVERS[name].stop, server) for name, server in to_stop]
            for (name, _), done in zip(to_stop, stops, strict=True):
                if done.exception() is not None:
                    logger.error("Could not stop embedded %s", name, exc_info=done.exception())
            logger.info("Stopped embedded %s", ", ".join(SERVERS[n].title for n, _ in to_stop))
        _state.save(data_dir, records)
