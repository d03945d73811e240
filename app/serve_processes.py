"""`shop serve --processes N`: N API processes accepting connections on one socket.

This process binds HOST:PORT once and runs N `shop serve --listen-fd FD` children under
the same supervisor as `shop worker --processes N` (app.supervision): one that dies is
started again after a backoff pause, SIGTERM or Ctrl-C stops them all gracefully. The
children inherit the listening socket, so they share one accept queue: connections that
wait while a child is down are taken by the others, none is reset with it (decision
0079). Everything the processes share (pub/sub, APQ documents, throttles, the signing
keys of bearer and consistency tokens) is in Redis or the settings already.

Metrics: the children count into files of one PROMETHEUS_MULTIPROC_DIR (our own temporary
directory, removed on exit, unless the operator set one), so /metrics in any of them adds
up every process's figures; a child that exits has its live gauges removed (decision 0080).
"""

from __future__ import annotations

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
# uvicorn's own default: how many connections wait for an accept() while every process is busy.
BACKLOG = 2048


def serve_processes(settings: Settings, processes: int) -> None:
    """Serve the API from `processes` supervised children until SIGTERM or SIGINT."""
    from prometheus_client.multiprocess import mark_process_dead

    with listening_socket(settings.host, settings.port) as sock, metrics_dir() as directory:
        env = joined_env(settings) | {MULTIPROC_DIR: str(directory)}
        fd = sock.fileno()
        argv = [sys.executable, "-m", "app.cli", "serve", "--listen-fd", str(fd)]
        children = [Child(f"API {n}", argv, env, (fd,)) for n in range(1, processes + 1)]

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
            "serving the API from %d processes on http://%s:%d",
            processes, settings.host, sock.getsockname()[1],
        )  # fmt: skip
        run_until_signalled(supervisor.run)


@contextmanager
def listening_socket(host: str, port: int) -> Iterator[socket.socket]:
    """A TCP socket listening on host:port that children may inherit; closed on exit."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    try:
        sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as exc:
        raise SystemExit(f"shop: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    with sock:
        yield sock


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
