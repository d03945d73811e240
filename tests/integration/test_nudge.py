"""The post-commit nudge: deduplicated in real Redis, and harmless when Redis is down."""

from __future__ import annotations

import logging
import time

import pytest
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bootstrap import build_bus, load_settings
from app.settings import Settings
from tests.support import event_count, free_port, unique
from writes.commands import SignUp
from writes.nudge import (
    JOB_INTERVAL_S,
    NUDGE_TIMEOUT_S,
    ArqNudger,
    arq_redis,
    queue_name,
    wake_channel,
)
from writes.unit_of_work import CommandMetadata


def _redis(url: str) -> ArqRedis:
    return arq_redis(url, timeout_s=1)


async def test_a_burst_of_nudges_queues_one_job(settings: Settings) -> None:
    assert settings.redis_url is not None
    prefix = f"{settings.redis_prefix}:{unique('nudge')}"
    redis = _redis(settings.redis_url)
    try:
        nudger = ArqNudger(redis, prefix)
        for _ in range(5):
            await nudger.nudge()
        assert await redis.zcard(queue_name(prefix)) == 1
    finally:
        await redis.delete(queue_name(prefix))
        await redis.aclose(close_connection_pool=True)


async def test_every_nudge_publishes_and_the_job_is_enqueued_once_per_interval(
    settings: Settings,
) -> None:
    """The job (three or four round trips even when already queued) is enqueued at most
    once per JOB_INTERVAL_S; the pub/sub wake-up goes out for every nudge."""
    assert settings.redis_url is not None
    prefix = f"{settings.redis_prefix}:{unique('interval')}"
    redis = _redis(settings.redis_url)
    now = [1000.0]
    nudger = ArqNudger(redis, prefix, clock=lambda: now[0])
    try:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(wake_channel(prefix))
            assert await pubsub.get_message(timeout=5) is not None  # the subscription
            await nudger.nudge()
            assert await redis.zcard(queue_name(prefix)) == 1
            # A worker ran the job (arq removes it from the queue, and its key once done);
            # a commit within the interval leaves it to the pub/sub wake-up (and the
            # worker's catch-up), one after it queues the job again.
            await redis.delete(queue_name(prefix), f"{job_key_prefix}{prefix}:nudge")
            now[0] += JOB_INTERVAL_S / 2
            await nudger.nudge()
            assert await redis.zcard(queue_name(prefix)) == 0
            now[0] += JOB_INTERVAL_S
            await nudger.nudge()
            assert await redis.zcard(queue_name(prefix)) == 1
            wakes = [await pubsub.get_message(timeout=5) for _ in range(3)]
        assert [(m or {}).get("data") for m in wakes] == [b"wake"] * 3
    finally:
        await redis.delete(queue_name(prefix))
        await redis.aclose(close_connection_pool=True)


async def test_a_nudge_wakes_listening_workers_without_waiting_for_the_queue(
    settings: Settings,
) -> None:
    """Workers listening on the wake channel hear of a commit before arq polls the queue."""
    assert settings.redis_url is not None
    prefix = f"{settings.redis_prefix}:{unique('wake')}"
    redis = _redis(settings.redis_url)
    try:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(wake_channel(prefix))
            confirmed = await pubsub.get_message(timeout=5)
            assert confirmed is not None
            assert confirmed["type"] == "subscribe"
            await ArqNudger(redis, prefix).nudge()
            message = await pubsub.get_message(timeout=5)
        assert message is not None
        assert (message["type"], message["data"]) == ("message", b"wake")
        assert await redis.zcard(queue_name(prefix)) == 1
    finally:
        await redis.delete(queue_name(prefix))
        await redis.aclose(close_connection_pool=True)


async def test_commands_succeed_when_redis_is_down(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on this port: every Redis call fails.
    redis = _redis(f"redis://127.0.0.1:{free_port()}/0")
    bus = build_bus(load_settings(), engine, ArqNudger(redis, unique("down")))
    before = await event_count(engine)
    started = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING, logger="writes.nudge"):
            committed = await bus.handle(
                SignUp(f"{unique('offline')}@example.com", "Olive Offline", "long-enough-pw"),
                CommandMetadata(None, "test"),
            )
    finally:
        await redis.aclose(close_connection_pool=True)

    assert committed.value.email.startswith("offline-")
    assert await event_count(engine) == before + 1
    assert "could not nudge the projection worker" in caplog.text
    # Bounded: the nudge gives up after its timeout instead of hanging the command.
    assert time.monotonic() - started < 5 + NUDGE_TIMEOUT_S
