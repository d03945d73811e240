"""Wakes the projection worker after a commit. Best effort: the events are already durable."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

log = logging.getLogger(__name__)

# The arq job a commit enqueues. It projects nothing: the worker that runs it relays the
# wake-up to every worker (workers.settings.relay_wake_up), whose projection loops project.
RELAY_WAKE_UP_JOB = "relay_wake_up"
NUDGE_TIMEOUT_S = 0.5
# The wake-up job is enqueued at most this often: it is there for workers that were not
# listening to the pub/sub wake-up, and the job id dedups it anyway (docs/decisions/0078).
JOB_INTERVAL_S = 0.1


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

    Every nudge publishes (one round trip); the job is enqueued once per JOB_INTERVAL_S
    at most, since arq's dedup costs three or four round trips (WATCH, EXISTS, MULTI)
    even when the job is already queued. A commit that finds the job enqueued less than
    that ago relies on that job, or on the worker's per-second catch-up if a worker took
    the job meanwhile: a worker that was not listening hears of it a second later at most,
    which is the bound a lost nudge already has.
    """

    def __init__(
        self, redis: ArqRedis, redis_prefix: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._queue = queue_name(redis_prefix)
        self._wake = wake_channel(redis_prefix)
        self._job_id = f"{redis_prefix}:nudge"
        # When the job was last enqueued (successfully); -inf: never.
        self._enqueued_at = float("-inf")

    async def nudge(self) -> None:
        """Never raises: a lost nudge only delays projection until the worker's catch-up."""
        try:
            await asyncio.wait_for(self._send(), NUDGE_TIMEOUT_S)
        except Exception as exc:  # any Redis failure: the command must not fail
            log.warning("could not nudge the projection worker: %s", exc)

    async def _send(self) -> None:
        await self._redis.publish(self._wake, b"wake")
        now = self._clock()
        if now - self._enqueued_at >= JOB_INTERVAL_S:
            await self._redis.enqueue_job(
                RELAY_WAKE_UP_JOB, _job_id=self._job_id, _queue_name=self._queue
            )
            self._enqueued_at = now


class SharedNudges:
    """Commits that come while a nudge is on its way share the next one.

    Each caller joins the round of nudging that has not started yet (starting one if
    there is none) and returns once that round has been sent, so a command still
    answers only after a nudge that began after its commit, as before. Under load one
    round serves every commit that came during the one before it: one Redis exchange
    for many orders instead of one per order (docs/decisions/0078).
    """

    def __init__(self, nudger: Nudger) -> None:
        self._nudger = nudger
        # The round not yet started, which every caller from now on joins.
        self._next: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None

    async def nudge(self) -> None:
        """Never raises (as the nudger it wraps); waits for its round to be sent."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._sender is None or self._sender.done():
                self._sender = asyncio.create_task(self._send_rounds())
        # Shielded: a caller that gives up does not cancel the round others wait for.
        await asyncio.shield(self._next)

    async def _send_rounds(self) -> None:
        while self._next is not None:
            round_, self._next = self._next, None
            try:
                await self._nudger.nudge()
            except Exception as exc:  # the wrapped nudger's contract says it never raises
                log.warning("could not nudge the projection worker: %s", exc)
            finally:
                round_.set_result(None)
