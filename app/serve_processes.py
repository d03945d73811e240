"""`shop serve --processes N`: N API processes accepting connections on one port.

This process checks the port is free, then runs N `shop serve` children under the same
supervisor as `shop worker --processes N` (app.supervision): one that dies is started
again after a backoff pause, SIGTERM or Ctrl-C stops them all gracefully. How they listen
is LISTEN_SOCKETS (decision 0079):

- `per_process` (the default, Linux): each child listens on a socket of its own with
  SO_REUSEPORT and the kernel spreads new connections evenly over them. This process keeps
  a bound, never listening socket in the same group, so the port stays reserved while a
  child restarts. The connections a dying child had not accepted yet are reset.
- `shared`: this process listens once and every child inherits that socket: one accept
  queue, so connections that wait while a child is down go to the others, but whichever
  process wakes first takes a whole burst of new connections.

Everything the processes share (pub/sub, APQ documents, throttles, the signing keys of
bearer and consistency tokens) is in Redis or the settings already.

Metrics: the children count into files of one PROMETHEUS_MULTIPROC_DIR (our own temporary
directory, removed on exit, unless the operator set one), so /metrics in any of them adds
up every process's figures; a child that exits has its live gauges removed (decision 0080).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.settings import Settings
from app.supervision import Child, ProcessSupervisor, joined_env, run_until_signalled

log = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# uvicorn's own default: how many connections wait for an accept() while a process is busy.
BACKLOG = 2048
# Where SO_REUSEPORT spreads connections over the sockets (elsewhere it hands them all to one).
BALANCING_REUSE_PORT = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def serve_processes(settings: Settings, processes: int) -> None:
    """Serve the API from `processes` supervised children until SIGTERM or SIGINT."""
    from prometheus_client.multiprocess import mark_process_dead

    mode = settings.listen_sockets
    if mode == "per_process" and not BALANCING_REUSE_PORT:
        log.warning("LISTEN_SOCKETS=per_process needs Linux's SO_REUSEPORT: sharing one socket")
        mode = "shared"
    with _listening(settings, mode) as (sock, args), metrics_dir() as directory:
        port = sock.getsockname()[1]
        env = joined_env(settings) | {MULTIPROC_DIR: str(directory), "PORT": str(port)}
        argv = [sys.executable, "-m", "app.cli", "serve", *args]
        passed = (sock.fileno(),) if mode == "shared" else ()
        children = [Child(f"API {n}", argv, env, passed) for n in range(1, processes + 1)]

        def exited(name: str, pid: int) -> None:
            # A dead process's subscriptions and listeners are gone: its live gauges go too.
            # Its counters stay, so the sums /metrics reports never go back.
            mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]

        supervisor = ProcessSupervisor(
            children,
            settings.restart_backoff_ms / 1000,
            settings.restart_backoff_max_ms / 1000,
            on_exit=exited,
        )
        log.info(
            "serving the API from %d processes on http://%s:%d (LISTEN_SOCKETS=%s)",
            processes, settings.host, port, mode,
        )  # fmt: skip
        run_until_signalled(supervisor.run)


def child_sockets(settings: Settings, args: argparse.Namespace) -> list[socket.socket] | None:
    """The sockets a `shop serve` child serves, as its supervisor said (None: a lone
    `shop serve`, which lets uvicorn bind HOST:PORT)."""
    if args.listen_fd is not None:
        return [socket.socket(fileno=args.listen_fd)]
    if args.reuse_port:
        # Bound, not listening: uvicorn listens once the app has started, so the kernel
        # sends a restarting child no connection before it can answer it.
        return [_bound(settings.host, settings.port, reuse_port=True)]
    return None


@contextmanager
def _listening(settings: Settings, mode: str) -> Iterator[tuple[socket.socket, list[str]]]:
    """This process's socket on HOST:PORT and the arguments that tell children how to listen.

    Binding here first fails fast, with one message, when the port is taken.
    """
    sock = _bound(settings.host, settings.port, reuse_port=mode == "per_process")
    with sock:
        if mode == "shared":
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
            yield sock, ["--listen-fd", str(sock.fileno())]
        else:
            yield sock, ["--reuse-port"]


def _bound(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    # uvicorn's own rule, so HOST means what it means to a lone `shop serve`.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"shop: cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


@contextmanager
def metrics_dir() -> Iterator[Path]:
    """The directory the children's metrics files go to: PROMETHEUS_MULTIPROC_DIR as the
    operator set it, or a fresh temporary one that is removed afterwards."""
    given = os.environ.get(MULTIPROC_DIR)
    if given:
        if any(Path(given).glob("*.db")):
            log.warning(
                "%s=%s holds metrics files of earlier processes: they add up in /metrics "
                "(prometheus-client asks for an empty directory at each start)",
                MULTIPROC_DIR, given,
            )  # fmt: skip
        yield Path(given)
        return
    directory = Path(tempfile.mkdtemp(prefix="shop-metrics-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
