"""Supervision without the stores: restart backoff, the child process supervisor, what
counts as a store outage for the worker, and the catch-up lines kept out of INFO."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import asyncpg
import psutil
import pytest
from pymongo.errors import AutoReconnect, NotPrimaryError, ServerSelectionTimeoutError
from redis.exceptions import BusyLoadingError, WatchError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from app.supervision import Backoff, Child, ProcessSupervisor
from workers.job_log import RoutineRunsToDebug
from workers.outages import is_outage, store_of


def test_backoff_doubles_up_to_its_maximum_and_starts_over_after_a_long_run() -> None:
    backoff = Backoff(first_s=0.5, most_s=10.0)
    assert [backoff.after_run(0.1) for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.after_run(10.0) == 0.5  # that run lasted: healthy again
    assert backoff.after_run(0.1) == 1.0


@pytest.mark.parametrize(
    ("error", "store"),
    [
        # What arq's poll loop raised when Redis restarted under a WATCH (issue 10).
        (WatchError("A ConnectionError occurred on while watching one or more keys"), "Redis"),
        (BusyLoadingError("Redis is loading the dataset in memory"), "Redis"),
        (RedisConnectionError("Connection refused"), "Redis"),
        (ServerSelectionTimeoutError("127.0.0.1:27017: connection refused"), "MongoDB"),
        (AutoReconnect("connection closed"), "MongoDB"),
        (NotPrimaryError("not primary"), "MongoDB"),
        (OperationalError("SELECT 1", None, Exception("server closed")), "PostgreSQL"),
        (asyncpg.CannotConnectNowError("the database system is starting up"), "PostgreSQL"),
        (ConnectionRefusedError(111, "Connection refused"), "a store"),
    ],
)
def test_store_errors_are_outages_the_worker_starts_over_after(
    error: BaseException, store: str
) -> None:
    assert is_outage(error)
    assert store_of(error) == store


@pytest.mark.parametrize("error", [ValueError("bad"), KeyError("x"), TypeError("t")])
def test_bugs_are_not_outages(error: BaseException) -> None:
    assert not is_outage(error)


def _arq_start_line(logger: logging.Logger, job: str) -> None:
    # Exactly how arq logs a job run's start (arq.worker.Worker.run_job).
    logger.info("%6.2fs → %s(%s)%s", 0.5, job, "", "")


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_catch_up_runs_leave_info_and_nudges_stay(
    caplog: pytest.LogCaptureFixture, level: int
) -> None:
    logger = logging.getLogger(f"test.arq.{level}")
    routine = RoutineRunsToDebug(["cron:catch_up"])
    logger.addFilter(routine)
    try:
        with caplog.at_level(level, logger=logger.name):
            _arq_start_line(logger, "cron:catch_up")
            _arq_start_line(logger, "1f0c:nudge:relay_wake_up")
            logger.warning("job %s, function %r not found", "cron:catch_up", "catch_up")
    finally:
        logger.removeFilter(routine)
    seen = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == logger.name]
    catch_up = ("DEBUG", "  0.50s → cron:catch_up()")
    assert seen == [
        *([catch_up] if level == logging.DEBUG else []),
        ("INFO", "  0.50s → 1f0c:nudge:relay_wake_up()"),
        ("WARNING", "job cron:catch_up, function 'catch_up' not found"),
    ]


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def test_a_child_that_exits_is_restarted_with_growing_pauses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    starts: list[bytes] = []

    def saw(child: str, line: bytes) -> None:
        starts.append(line)
        if len(starts) == 4:
            stop.set()

    crashing = Child(
        "crasher", _python("import sys; print('up', file=sys.stderr); sys.exit(3)"), {}
    )
    supervisor = ProcessSupervisor([crashing], 0.1, 5.0, on_line=saw)
    with caplog.at_level(logging.INFO, logger="app.supervision"):
        await asyncio.wait_for(supervisor.run(stop), 60)
    messages = [r.getMessage() for r in caplog.records if r.name == "app.supervision"]
    restarts = [m for m in messages if "exited with code 3" in m]
    assert [m.split("restarting it in ")[1] for m in restarts[:3]] == [
        "0.1 s (restart 1)",
        "0.2 s (restart 2)",
        "0.4 s (restart 3)",
    ]
    assert len([m for m in messages if m.startswith("crasher started as pid")]) == 4
    assert starts == [b"up\n"] * 4


async def test_stop_ends_every_child_even_one_that_ignores_sigterm(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    ready: set[str] = set()
    wait_forever = (
        "import sys, threading; print('ready', file=sys.stderr); threading.Event().wait()"
    )
    stubborn = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + wait_forever

    def saw(child: str, line: bytes) -> None:
        ready.add(child)
        if len(ready) == 2:
            stop.set()

    children = [
        Child("polite", _python(wait_forever), {}),
        Child("stubborn", _python(stubborn), {}),
    ]
    supervisor = ProcessSupervisor(children, 0.05, 1.0, on_line=saw, stop_grace_s=0.5)
    with caplog.at_level(logging.INFO, logger="app.supervision"):
        await asyncio.wait_for(supervisor.run(stop), 60)
    assert not any(psutil.pid_exists(pid) for pid in supervisor.pids.values())
    messages = [r.getMessage() for r in caplog.records if r.name == "app.supervision"]
    assert [m for m in messages if "killing it" in m] == [
        f"stubborn (pid {supervisor.pids['stubborn']}) ignored SIGTERM for 0.5 s; killing it"
    ]
    assert not [m for m in messages if "restarting" in m]


async def test_children_inherit_the_descriptors_they_are_given_and_each_exit_is_reported() -> None:
    """What `shop serve --processes N` relies on: every start of a child gets the listening
    socket, and the supervisor hears of each exit (to clear that pid's live metrics)."""
    stop = asyncio.Event()
    exits: list[tuple[str, int]] = []
    lines: list[bytes] = []
    read, write = os.pipe()
    os.write(write, b"inherited")
    os.close(write)
    # Reads the pipe by the number it was given: it exists in the child only if passed on.
    peek = f"import os, sys; print(os.read({read}, 9).decode(), file=sys.stderr); sys.exit(0)"

    def saw(child: str, line: bytes) -> None:
        lines.append(line)

    def exited(name: str, pid: int) -> None:
        exits.append((name, pid))
        if len(exits) == 2:
            stop.set()

    child = Child("peeker", _python(peek), {}, pass_fds=(read,))
    supervisor = ProcessSupervisor([child], 0.05, 1.0, on_line=saw, on_exit=exited)
    try:
        await asyncio.wait_for(supervisor.run(stop), 60)
    finally:
        os.close(read)
    # The first start read what the pipe held; the restart got the same (now empty) pipe.
    assert lines[:2] == [b"inherited\n", b"\n"]
    assert [name for name, _ in exits] == ["peeker", "peeker"]
    assert exits[0][1] != exits[1][1]
    assert exits[-1][1] == supervisor.pids["peeker"]
