"""Wakes the projection worker after a commit. Best effort: the events are already durable."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import orjson
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

log = logging.getLogger(__name__)

# The arq job a commit enqueues. It projects nothing: the worker that runs it relays the
# wake-up to every worker (workers.settings.relay_wake_up), whose projection loops project.
RELAY_WAKE_UP_JOB = "relay_wake_up"
NUDGE_TIMEOUT_S = 0.5


class Nudger(Protocol):
    async def nudge(self) -> None: ...


def serialize_job(job: dict[str, Any]) -> bytes:
    """arq jobs travel as JSON (never pickle), the same in the API and the worker."""
    return orjson.dumps(job)


def deserialize_job(raw: bytes) -> dict[str, Any]:
    job: dict[str, Any] = orjson.loads(raw)
    return job


def arq_redis(url: str, timeout_s: float = 2.0) -> ArqRedis:
    """An arq client with JSON jobs; it connects lazily, so a Redis outage cannot stop start-up."""
    return ArqRedis(
        connection_pool=ConnectionPool.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        ),
        job_serializer=serialize_job,
        job_deserializer=deserialize_job,
    )


def wake_channel(redis_prefix: str) -> str:
    """The pub/sub channel that wakes every worker's projection loops at once."""
    return f"{redis_prefix}:wake"


def queue_name(redis_prefix: str) -> str:
    """The arq queue of one deployment (a prefix keeps test runs apart)."""
    return f"{redis_prefix}:queue"


class ArqNudger:
    """Wakes listening workers at once, and enqueues the wake-up job for the others.

    The wake-up is a pub/sub message: workers listening get it within a millisecond,
    where the job waits for arq's next poll of the queue (up to poll_delay). The job,
    under a fixed id so a burst of commits queues it once, still reaches a worker that
    was not listening at that moment (starting, or reconnecting to Redis).
    """

    def __init__(self, redis: ArqRedis, redis_prefix: str) -> None:
        self._redis = redis
        self._queue = queue_name(redis_prefix)
        self._wake = wake_channel(redis_prefix)
        self._job_id = f"{redis_prefix}:nudge"

    async def nudge(self) -> None:
        """Never raises: a lost nudge only delays projection until the worker's catch-up."""
        try:
            await asyncio.wait_for(self._send(), NUDGE_TIMEOUT_S)
        except Exception as exc:  # any Redis failure: the command must not fail
            log.warning("could not nudge the projection worker: %s", exc)

    async def _send(self) -> None:
        await self._redis.publish(self._wake, b"wake")
        await self._redis.enqueue_job(
            RELAY_WAKE_UP_JOB, _job_id=self._job_id, _queue_name=self._queue
        )
