"""Embedded PostgreSQL 16 from the pgserver wheel, listening on a unix socket only.

The pgserver package itself is never imported: importing it sets up its own lock files and
atexit handlers and warns when XDG_RUNTIME_DIR is unset; we only use its binaries.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from app.embedded import _procs
from app.embedded._procs import Launch, ProcId, Started
from app.embedded._wheels import package_dir

DATABASE = "shop"
SUPERUSER = "postgres"
# Postgres refuses to run as root; this is the user pgserver itself would use.
SYSTEM_USER = "pgserver"
# The port is only part of the socket's name (no TCP), so the default keeps URLs port-free.
SOCKET_NAME = ".s.PGSQL.5432"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes, including the terminating NUL


class PostgresServer:
    """PostgreSQL with its cluster in service_dir/pgdata and its log in postgres.log."""

    title = "PostgreSQL"
    env_var = "DATABASE_URL"
    uses_port = False

    def start(self, service_dir: Path, port: int | None) -> Started:
        """Initialises the cluster if needed, starts postgres and creates the shop database."""
        bin_dir = _bin_dir()
        user = _system_user()
        pgdata = service_dir / "pgdata"
        launch = Launch.begin(self.title, self.env_var, "postgres", service_dir / "postgres.log")
        if user is not None:
            _give_access(service_dir, bin_dir, user)
        service_dir.chmod(0o700)
        if not (pgdata / "PG_VERSION").exists():
            _initdb(bin_dir, pgdata, user, launch)
        socket_dir = _socket_dir(service_dir, user)
        # Nothing runs on these files any more (leftovers were stopped before start), so
        # lock files still here are stale and would make postgres refuse to start.
        for stale in (pgdata / "postmaster.pid", socket_dir / f"{SOCKET_NAME}.lock"):
            stale.unlink(missing_ok=True)
        argv: list[str | Path] = [bin_dir / "postgres", "-D", pgdata, "-k", socket_dir]
        argv += ["-c", "listen_addresses="]
        proc = _procs.spawn(argv, launch.log, user=user)
        server = ProcId.of(proc.pid)
        try:
            _procs.wait_until(lambda: _postmaster_ready(pgdata, proc.pid), proc, launch)
            _ensure_database(bin_dir, socket_dir, launch)
            if server is None or not server.alive():
                raise launch.error("postgres exited right after starting")
        except BaseException:
            if server is not None:
                _procs.stop(server, signal.SIGINT)
            raise
        url = f"postgresql://{SUPERUSER}@/{DATABASE}?host={quote(str(socket_dir), safe='/')}"
        return Started(server, url)

    def is_healthy(self, url: str) -> bool:
        """Whether postgres accepts connections on the URL's socket."""
        host = parse_qs(urlsplit(url).query).get("host", [""])[0]
        argv: list[str | Path] = [_bin_dir() / "pg_isready", "-q", "-h", host, "-t", "3"]
        argv += ["-d", DATABASE, "-U", SUPERUSER]
        try:
            done = subprocess.run(argv, env=_clean_env(), timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def stop(self, server: ProcId) -> None:
        """Fast shutdown: SIGINT rolls back open transactions and disconnects clients."""
        _procs.stop(server, signal.SIGINT)

    def leftover(self, service_dir: Path) -> ProcId | None:
        """A postmaster still running on service_dir/pgdata."""
        pgdata = service_dir / "pgdata"
        return _procs.pid_from_file(pgdata / "postmaster.pid", name="postgres", workdir=pgdata)


def _bin_dir() -> Path:
    bin_dir = (
        package_dir("pgserver", "pgserver", "PostgreSQL", "DATABASE_URL") / "pginstall" / "bin"
    )
    if not (bin_dir / "postgres").is_file():
        raise _procs.unavailable(
            "PostgreSQL", "DATABASE_URL", f"{bin_dir / 'postgres'} is missing (reinstall pgserver)"
        )
    return bin_dir


def _system_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    try:
        argv = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        done = subprocess.run([*argv, SYSTEM_USER], capture_output=True, text=True, check=False)
        problem = done.stderr.strip()
    except OSError as exc:
        problem = str(exc)
    try:
        # Also covers another process having created the user meanwhile.
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise _procs.unavailable(
            "PostgreSQL",
            "DATABASE_URL",
            f"postgres refuses to run as root and the system user {SYSTEM_USER!r} could not be "
            f"created ({problem}); create it with `useradd {SYSTEM_USER}`",
        ) from None


def _give_access(service_dir: Path, bin_dir: Path, user: pwd.struct_passwd) -> None:
    # The postgres user must reach its data through our folders and run the wheel's files.
    os.chown(service_dir, user.pw_uid, user.pw_gid)
    for path in (*service_dir.parents, bin_dir, *bin_dir.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)
    if not (bin_dir / "postgres").stat().st_mode & stat.S_IXOTH:
        for path in [bin_dir.parent, *bin_dir.parent.rglob("*")]:
            extra = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() or path.parent == bin_dir else 0)
            path.chmod(path.stat().st_mode | extra)


def _initdb(bin_dir: Path, pgdata: Path, user: pwd.struct_passwd | None, launch: Launch) -> None:
    # Built aside and renamed into place, so an interrupted initdb never leaves a half cluster.
    staging = pgdata.with_name("pgdata.init")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(pgdata, ignore_errors=True)
    argv: list[str | Path] = [bin_dir / "initdb", "-D", staging, "--auth=trust", "--encoding=UTF8"]
    argv += ["--username", SUPERUSER, "--no-instructions"]
    # C.UTF-8 sorts like C but knows non-ASCII letters; not every system has it.
    for locale_args in (["--locale=C.UTF-8"], ["--no-locale"]):
        proc = _procs.spawn([*argv, *locale_args], launch.log, user=user)
        code = proc.wait()
        _procs.reap()
        if code == 0:
            staging.rename(pgdata)
            return
        shutil.rmtree(staging, ignore_errors=True)
    raise launch.error(f"initdb exited with code {code}")


def _socket_dir(service_dir: Path, user: pwd.struct_passwd | None) -> Path:
    if len(str(service_dir / SOCKET_NAME)) <= MAX_SOCKET_PATH:
        return service_dir
    # Too deep for a unix socket path: use a short private folder, named after the data dir.
    digest = hashlib.sha256(str(service_dir).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"shop-pg-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    if user is not None:
        os.chown(short, user.pw_uid, user.pw_gid)
    return short


def _postmaster_ready(pgdata: Path, pid: int) -> bool:
    # pg_ctl's own test: our postmaster's pid file says "ready" (a stale file names another pid).
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"


def _ensure_database(bin_dir: Path, socket_dir: Path, launch: Launch) -> None:
    def psql(sql: str) -> str:
        argv: list[str | Path] = [bin_dir / "psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", socket_dir]
        argv += ["-U", SUPERUSER, "-d", "postgres", "-c", sql]
        done = subprocess.run(
            argv, capture_output=True, text=True, env=_clean_env(), timeout=60, check=False
        )
        if done.returncode != 0:
            raise launch.error(f"could not create database {DATABASE!r}: {done.stderr.strip()}")
        return done.stdout.strip()

    exists = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"  # noqa: S608 (a constant)
    if psql(exists) != "1":
        psql(f"CREATE DATABASE {DATABASE}")


def _clean_env() -> dict[str, str]:
    # PG* variables meant for the user's own server (PGPASSWORD, PGSSLMODE, ...) must not
    # leak into the client tools talking to ours.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}
