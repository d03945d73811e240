"""Process plumbing shared by the embedded servers: spawn, identify, wait for and stop them."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

POLL_INTERVAL = 0.05
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"


class EmbeddedServiceError(RuntimeError):
    """An embedded server is missing or could not start; the message says what to do instead."""


@dataclass(frozen=True)
class ProcId:
    """A process, told apart from a later process that reuses its pid by its start time."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> ProcId | None:
        """The identity of the running process `pid`, or None if there is none."""
        try:
            return cls(pid, psutil.Process(pid).create_time())
        except psutil.Error:
            return None

    def same_as(self, other: ProcId) -> bool:
        """Whether both name the same process (start times are only exact to a clock tick)."""
        return self.pid == other.pid and abs(self.started - other.started) < 0.5

    def alive(self) -> bool:
        """Whether this very process still runs (a zombie counts as gone)."""
        try:
            proc = psutil.Process(self.pid)
            return (
                abs(proc.create_time() - self.started) < 0.5
                and proc.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


@dataclass(frozen=True)
class Started:
    """What a server's start() hands back."""

    server: ProcId
    url: str
    port: int | None = None


class Server(Protocol):
    """One kind of embedded server."""

    title: str  # for messages, e.g. "PostgreSQL"
    env_var: str  # the setting that replaces it, e.g. "DATABASE_URL"
    uses_port: bool

    def start(self, service_dir: Path, port: int | None) -> Started:
        """Starts the server on its files in service_dir; raises EmbeddedServiceError."""
        ...

    def is_healthy(self, url: str) -> bool:
        """Whether the server at url answers."""
        ...

    def stop(self, server: ProcId) -> None:
        """Stops the server gracefully, killing it if it does not stop in time."""
        ...

    def leftover(self, service_dir: Path) -> ProcId | None:
        """A server still running on service_dir's files that no record knows about."""
        ...


def display_path(path: Path) -> str:
    """path relative to the working directory when it is inside it, for shorter messages."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file ('' if it cannot be read)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16_384))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def unavailable(title: str, env_var: str, reason: str) -> EmbeddedServiceError:
    """The error for a server that cannot be run here at all."""
    return EmbeddedServiceError(
        f"{title} is not available: {reason}. Set {env_var} to use your own {title} instead."
    )


@dataclass(frozen=True)
class Launch:
    """One attempt at starting a server, for its error messages."""

    title: str
    env_var: str
    program: str
    log: Path

    @classmethod
    def begin(cls, title: str, env_var: str, program: str, log: Path) -> Launch:
        """A new start attempt; its log starts empty so that its tail is about this start."""
        log.write_bytes(b"")
        return cls(title, env_var, program, log)

    def error(self, reason: str) -> EmbeddedServiceError:
        """A start failure naming the log file and quoting its end."""
        message = f"{self.title} could not start: {reason} (see {display_path(self.log)})"
        tail = log_tail(self.log)
        message += f":\n{tail}\n" if tail else ".\n"
        return EmbeddedServiceError(
            f"{message}Set {self.env_var} to use your own {self.title} instead."
        )


# Servers we spawned stay referenced here so they can be reaped once stopped, by us or by
# another process: no zombies, and no ResourceWarning from a Popen dropped while it runs.
_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


def spawn(
    argv: Sequence[str | Path], log: Path, *, user: pwd.struct_passwd | None = None
) -> subprocess.Popen[bytes]:
    """Starts a server with its output appended to log, in a session of its own so a Ctrl-C
    to our terminal does not reach it: we stop it ourselves."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
    with _children_lock:
        _children[proc.pid] = proc
    return proc


def reap() -> None:
    """Collects the exit status of our children that have ended."""
    with _children_lock:
        for pid, proc in list(_children.items()):
            if proc.poll() is not None:
                del _children[pid]


def wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    launch: Launch,
    timeout: float = START_TIMEOUT,
) -> None:
    """Polls ready() until it holds; raises if the server exits or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        code = proc.poll()
        if code is not None:
            raise launch.error(f"{launch.program} exited with code {code}")
        if time.monotonic() > deadline:
            raise launch.error(f"{launch.program} was not ready after {timeout:.0f} s")
        time.sleep(POLL_INTERVAL)


def stop(server: ProcId, sig: signal.Signals, timeout: float = STOP_TIMEOUT) -> None:
    """Sends sig (the server's graceful shutdown); kills its process group if it lingers."""
    if server.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, sig)
        if not _wait_gone(server, timeout):
            _kill_group(server.pid)
            _wait_gone(server, 5.0)
    reap()


def _wait_gone(server: ProcId, timeout: float) -> bool:
    with _children_lock:
        child = _children.get(server.pid)
    if child is not None:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    while server.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def _kill_group(pid: int) -> None:
    # Servers lead their own session, so the group also holds e.g. postgres' backends,
    # which would otherwise outlive a killed postmaster and block the next start.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def pid_from_file(path: Path, *, name: str, workdir: Path) -> ProcId | None:
    """The live server named in a pid/lock file, if it is `name` running on workdir."""
    try:
        pid = int(path.read_text().split()[0])
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != name:
            return None
        if proc.cwd() != str(workdir) and str(workdir) not in proc.cmdline():
            return None
        return ProcId(pid, proc.create_time())
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def port_is_free(port: int) -> bool:
    """Whether nothing listens on the loopback port."""
    with socket.socket() as sock:
        # As the servers themselves do, so a port whose old connections linger in TIME_WAIT
        # still counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_port(avoid: set[int]) -> int:
    """A loopback port nothing listens on, not among avoid."""
    while True:
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port not in avoid:
            return port


def accepts(port: int) -> bool:
    """Whether a TCP connection to the loopback port succeeds."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def ports_of(server: ProcId) -> set[int]:
    """The loopback TCP ports the process listens on (empty if it is gone)."""
    try:
        connections = psutil.Process(server.pid).net_connections("inet")
    except psutil.Error:
        return set()
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}
