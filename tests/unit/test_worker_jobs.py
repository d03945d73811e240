"""The worker's wake-up job (workers/settings.py): the name the API enqueues, the name the
previous release enqueued, and what running it does. No services needed."""

from __future__ import annotations

from typing import Any

from workers.settings import PREVIOUS_RELAY_WAKE_UP_JOB, WorkerSettings, relay_wake_up
from writes.nudge import RELAY_WAKE_UP_JOB, wake_channel


class _Supervisor:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


class _Redis:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, channel: str, message: bytes) -> None:
        self.published.append((channel, message))


class _Config:
    redis_prefix = "shop-test"


def test_the_job_a_commit_enqueues_and_the_previous_releases_name_both_relay() -> None:
    jobs = {job.name: job.coroutine for job in WorkerSettings.functions}
    # A rolling upgrade: API processes of the previous release still enqueue the old name.
    assert jobs == {RELAY_WAKE_UP_JOB: relay_wake_up, PREVIOUS_RELAY_WAKE_UP_JOB: relay_wake_up}
    assert RELAY_WAKE_UP_JOB != PREVIOUS_RELAY_WAKE_UP_JOB


async def test_relaying_a_wake_up_wakes_this_worker_and_tells_every_other() -> None:
    supervisor, redis = _Supervisor(), _Redis()
    ctx: dict[str, Any] = {"supervisor": supervisor, "redis": redis, "config": _Config()}

    await relay_wake_up(ctx)

    assert supervisor.woken == 1
    assert redis.published == [(wake_channel("shop-test"), b"wake")]
