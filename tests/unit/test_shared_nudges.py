"""SharedNudges: commits during a nudge share the next one, and each waits for a nudge
that started after it asked."""

from __future__ import annotations

import asyncio

from writes.nudge import SharedNudges


class HeldNudger:
    """Counts sends; each send waits until the test lets it finish."""

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self.release = asyncio.Event()
        self.running = asyncio.Event()

    async def nudge(self) -> None:
        self.started += 1
        self.running.set()
        await self.release.wait()
        self.release.clear()
        self.running.clear()
        self.finished += 1


async def test_commits_during_a_send_share_the_next_send() -> None:
    held = HeldNudger()
    nudges = SharedNudges(held)
    first = asyncio.create_task(nudges.nudge())
    await held.running.wait()
    # Five commits while the first send is on its way: they must not ride on it (it
    # began before them), and need only one more send between them.
    joined: list[int] = []
    all_joined = asyncio.Event()

    async def commit() -> None:
        joined.append(1)
        if len(joined) == 5:
            all_joined.set()
        # nudge() joins its round before its first suspension, so by the time the test
        # resumes on all_joined, all five have joined.
        await nudges.nudge()

    later = [asyncio.create_task(commit()) for _ in range(5)]
    await all_joined.wait()
    assert held.started == 1

    held.release.set()
    await first
    assert not any(task.done() for task in later)
    await held.running.wait()
    assert held.started == 2
    held.release.set()
    await asyncio.gather(*later)
    assert (held.started, held.finished) == (2, 2)


async def test_a_lone_commit_is_nudged_before_it_returns() -> None:
    held = HeldNudger()
    nudges = SharedNudges(held)
    held.release.set()
    await nudges.nudge()
    assert held.finished == 1
    held.release.set()
    await nudges.nudge()
    assert held.finished == 2


async def test_a_caller_that_gives_up_leaves_the_round_to_the_others() -> None:
    held = HeldNudger()
    nudges = SharedNudges(held)
    quitter = asyncio.create_task(nudges.nudge())
    stayer = asyncio.create_task(nudges.nudge())
    await held.running.wait()
    quitter.cancel()
    held.release.set()
    await stayer
    assert held.finished == 1
    assert quitter.cancelled()


class BrokenNudger:
    async def nudge(self) -> None:
        raise ConnectionError("redis is gone")


async def test_a_nudger_that_raises_does_not_fail_the_commit() -> None:
    nudges = SharedNudges(BrokenNudger())
    await nudges.nudge()
    await nudges.nudge()
