"""The record, shared by every process using a data dir, of which servers run and who uses them.

data_dir/services.json holds, per service, the server process, its URL and port, and the
client processes using it. It is only read or written while holding an exclusive flock on
data_dir/services.lock, which the kernel releases if its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.embedded._procs import ProcId

STATE_FILE = "services.json"
LOCK_FILE = "services.lock"
_VERSION = 1

logger = logging.getLogger(__name__)


@dataclass
class Record:
    """One service's entry; server is None while it is stopped (url and port are kept so a
    restart can reuse them)."""

    server: ProcId | None = None
    url: str | None = None
    port: int | None = None
    clients: list[ProcId] = field(default_factory=list)


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """Holds the data dir's exclusive lock (blocking until other processes release it)."""
    with (data_dir / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load(data_dir: Path) -> dict[str, Record]:
    """The records in the state file; an absent or unreadable file reads as no records,
    since every server is checked for life before its record is trusted."""
    path = data_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text())
        return {name: _record(entry) for name, entry in raw["services"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("Ignoring unreadable %s: %s", path, exc)
        return {}


def save(data_dir: Path, records: dict[str, Record]) -> None:
    """Replaces the state file atomically, so a crash never leaves half of it."""
    services = {
        name: {
            "pid": rec.server.pid if rec.server else None,
            "started": rec.server.started if rec.server else None,
            "url": rec.url,
            "port": rec.port,
            "clients": [{"pid": c.pid, "started": c.started} for c in rec.clients],
        }
        for name, rec in records.items()
    }
    path = data_dir / STATE_FILE
    tmp = path.with_name(f"{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"version": _VERSION, "services": services}, indent=2) + "\n")
    tmp.replace(path)


def _record(entry: dict[str, Any]) -> Record:
    pid, started = entry.get("pid"), entry.get("started")
    return Record(
        server=ProcId(int(pid), float(started)) if pid is not None and started else None,
        url=entry.get("url"),
        port=int(entry["port"]) if entry.get("port") else None,
        clients=[ProcId(int(c["pid"]), float(c["started"])) for c in entry.get("clients", [])],
    )
