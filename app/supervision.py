"""Keeps child processes running: one that exits is started again after a backoff pause.

`shop dev` supervises its API and worker, `shop worker --processes N` its N workers, `shop
serve --processes N` its N API processes (on one port). Each
child runs in a session of its own, so a Ctrl-C reaches only the supervisor, which then
stops every child itself (SIGTERM, then SIGKILL after a grace period) and restarts none.
The children's stderr passes through the supervisor line by line: a hook can watch it,
and a supervisor that dies takes its children's pipe with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from app.settings import Settings

log = logging.getLogger(__name__)

STOP_GRACE_S = 15.0
# A child's JSON log line carries a whole traceback; asyncio's default limit is 64 KiB.
LINE_LIMIT = 1 << 20

T = TypeVar("T")
LineHook = Callable[[str, bytes], None]
# Called with a child's name and pid once it exited, before it is started again.
ExitHook = Callable[[str, int], None]


@dataclass(frozen=True)
class Child:
    """A process to keep running: its name in the log, its command line and environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    # Descriptors the child inherits as they are, such as a listening socket.
    pass_fds: tuple[int, ...] = ()


@dataclass
class Backoff:
    """Pauses before each restart: `first_s`, doubled on each failure in a row up to `most_s`.

    A run that lasted at least `most_s` was healthy: the next pause starts at `first_s` again.
    """

    first_s: float
    most_s: float
    _next_s: float = field(init=False)

    def __post_init__(self) -> None:
        self._next_s = self.first_s

    def after_run(self, ran_s: float) -> float:
        """The pause before the next start, given how long the run that just ended lasted."""
        if ran_s >= self.most_s:
            self._next_s = self.first_s
        pause = self._next_s
        self._next_s = min(self._next_s * 2, max(self.most_s, self.first_s))
        return pause


class ProcessSupervisor:
    """Runs every child until `stop` is set, restarting each one that exits with backoff."""

    def __init__(
        self,
        children: Sequence[Child],
        backoff_s: float,
        backoff_max_s: float,
        on_line: LineHook | None = None,
        stop_grace_s: float = STOP_GRACE_S,
        on_exit: ExitHook | None = None,
    ) -> None:
        self._children = children
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._on_line = on_line
        self._on_exit = on_exit
        self._stop_grace_s = stop_grace_s
        self.pids: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Returns once `stop` is set and every child has exited."""
        await asyncio.gather(*(self._keep(child, stop) for child in self._children))

    async def _keep(self, child: Child, stop: asyncio.Event) -> None:
        backoff = Backoff(self._backoff_s, self._backoff_max_s)
        restarts = 0
        while not stop.is_set():
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                *child.argv,
                env=dict(child.env),
                stdin=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=LINE_LIMIT,
                pass_fds=child.pass_fds,
            )
            self.pids[child.name] = proc.pid
            log.info("%s started as pid %d", child.name, proc.pid)
            assert proc.stderr is not None
            forwarding = asyncio.create_task(self._forward(child.name, proc.stderr))
            exited = asyncio.create_task(proc.wait())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not exited.done():
                await _terminate(child.name, proc, self._stop_grace_s)
                await forwarding
                self._exited(child.name, proc.pid)
                return
            await forwarding
            self._exited(child.name, proc.pid)
            pause = backoff.after_run(time.monotonic() - started)
            restarts += 1
            log.warning(
                "%s (pid %d) exited with %s after %.1f s; restarting it in %.1f s (restart %d)",
                child.name, proc.pid, _exit_status(proc.returncode),
                time.monotonic() - started, pause, restarts,
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await stop.wait()

    def _exited(self, name: str, pid: int) -> None:
        if self._on_exit is not None:
            self._on_exit(name, pid)

    async def _forward(self, name: str, stream: asyncio.StreamReader) -> None:
        out = sys.stderr.buffer
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # longer than LINE_LIMIT: pass on what is buffered
                line = await stream.read(LINE_LIMIT)
            if not line:
                return
            out.write(line)
            out.flush()
            if self._on_line is not None:
                self._on_line(name, line)


async def _terminate(name: str, proc: asyncio.subprocess.Process, grace_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        log.warning("%s (pid %d) ignored SIGTERM for %.1f s; killing it", name, proc.pid, grace_s)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _exit_status(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"code {code}"


def joined_env(settings: Settings) -> dict[str, str]:
    """This environment with the resolved store URLs, so children join the servers this
    process started (or was given) instead of starting their own."""
    assert settings.database_url is not None
    return os.environ | {
        "DATABASE_URL": settings.database_url,
        "MONGODB_URL": settings.mongodb_url or "",
        "REDIS_URL": settings.redis_url or "",
    }


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Runs `main(stop)` in a fresh event loop; SIGINT and SIGTERM set `stop`.

    The previous SIGINT and SIGTERM handlers are put back afterwards, so what follows (such
    as stopping embedded servers) still unwinds on a second signal.
    """
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    async def body() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in previous:
            loop.add_signal_handler(sig, stop.set)
        try:
            return await main(stop)
        finally:
            for sig in previous:
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(body())
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
