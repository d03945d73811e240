"""Projection lag under sustained writes, and rebuild rate.

    .venv/bin/python -m bench.projections [--orders 2000] [--rate 200] [--smoke]

Starts (or joins) the embedded services the way `make dev` does, in a database, Mongo
database and Redis prefix of its own; runs one `shop worker`; places orders through the
command bus at a steady rate; and times each order from its commit to the batch
notification that announces its document (commit -> visible). Then rebuilds every
projection from the whole log and reports events per second. Prints medians and
percentiles; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import time
import uuid
from typing import Any

import asyncpg
import orjson
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from app.services import resolved_settings
from app.settings import Settings
from workers.notifications import projections_channel
from workers.projectors import PROJECTORS
from workers.rebuild import rebuild
from writes import commands as c
from writes.bus import MessageBus
from writes.db import create_engine, migrate, session_factory
from writes.nudge import ArqNudger, arq_redis
from writes.unit_of_work import CommandMetadata


async def _started(worker: asyncio.subprocess.Process) -> None:
    """Return once the worker logs that it started; keep draining its log afterwards."""
    assert worker.stderr is not None
    stream = worker.stderr
    while line := await asyncio.wait_for(stream.readline(), 60):
        if b'"message":"worker ' in line and b'started"' in line:
            break
    else:
        raise RuntimeError("the worker exited before it started")

    async def drain() -> None:
        while await stream.readline():
            pass

    asyncio.get_running_loop().create_task(drain())


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _admin_sql(url: str, statement: str) -> None:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def run(settings: Settings, orders: int, rate: float) -> dict[str, Any]:
    assert settings.database_url is not None
    assert settings.mongodb_url is not None
    assert settings.redis_url is not None
    engine = create_engine(settings.database_url, pool_size=8, max_overflow=0)
    arq = arq_redis(settings.redis_url)
    bus = MessageBus(session_factory(engine), ArqNudger(arq, settings.redis_prefix))
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    redis = Redis.from_url(settings.redis_url)
    env = os.environ | {
        "DATABASE_URL": settings.database_url,
        "MONGODB_URL": settings.mongodb_url,
        "REDIS_URL": settings.redis_url,
        "MONGODB_DATABASE": settings.mongodb_database,
        "REDIS_PREFIX": settings.redis_prefix,
        "LOG_LEVEL": "INFO",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await _started(worker)
        meta = CommandMetadata(None, "bench")
        admin = await bus.handle(
            c.CreateAdmin(f"{uuid.uuid4().hex}@bench.io", "Bench", "bench-password"), meta
        )
        admin_meta = CommandMetadata(c.Actor(admin.value.id, c.Role.ADMIN), "bench")
        products = [
            (
                await bus.handle(
                    c.CreateProduct(f"B-{uuid.uuid4().hex[:10]}", f"Item {i}", "", 100 + i, 10**8),
                    admin_meta,
                )
            ).value.id
            for i in range(20)
        ]
        customer = await bus.handle(
            c.SignUp(f"{uuid.uuid4().hex}@bench.io", "Buyer", "bench-password"), meta
        )
        customer_meta = CommandMetadata(c.Actor(customer.value.id, c.Role.CUSTOMER), "bench")

        committed_at: dict[str, float] = {}
        visible_at: dict[str, float] = {}
        writing_done = asyncio.Event()
        all_visible = asyncio.Event()

        async def listen() -> None:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(projections_channel(settings.redis_prefix))
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    body = orjson.loads(message["data"])
                    if body["projection"] == "orders":
                        now = time.perf_counter()
                        for order_id in body["ids"]:
                            visible_at.setdefault(order_id, now)
                        if writing_done.is_set() and committed_at.keys() <= visible_at.keys():
                            all_visible.set()

        listener = asyncio.create_task(listen())
        started = time.perf_counter()
        for n in range(orders):
            lines = tuple(c.OrderLineRequest(str(products[(n + k) % 20]), 1) for k in range(3))
            result = await bus.handle(c.PlaceOrder(lines), customer_meta)
            committed_at[str(result.value.id)] = time.perf_counter()
            # Pace to the target rate (a load generator's schedule, not a wait for a result).
            delay = started + (n + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        write_seconds = time.perf_counter() - started
        writing_done.set()
        if not committed_at.keys() <= visible_at.keys():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_visible.wait(), 60)
        listener.cancel()
        lags = [(visible_at[k] - committed_at[k]) * 1000 for k in committed_at if k in visible_at]

        db = mongo[settings.mongodb_database]
        rebuilds = {}
        for name, projector in PROJECTORS.items():
            rebuilt = await rebuild(
                engine, mongo, db, projector, redis, settings.redis_prefix, drop_grace_s=0
            )
            rebuilds[name] = rebuilt.events / rebuilt.seconds if rebuilt.seconds else 0.0
        return {
            "orders": orders,
            "achieved_rate": orders / write_seconds,
            "visible": len(lags),
            "lag_p50_ms": statistics.median(lags) if lags else None,
            "lag_p99_ms": percentile(lags, 0.99) if lags else None,
            "lag_max_ms": max(lags) if lags else None,
            "rebuild_events_per_s": rebuilds,
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()
        await redis.aclose()
        await arq.aclose(close_connection_pool=True)
        await mongo.close()
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="orders per second")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args()
    orders, rate = (50, 100.0) if args.smoke else (args.orders, args.rate)
    name = f"shop_bench_{uuid.uuid4().hex[:8]}"
    with resolved_settings(Settings(), postgres=True, mongo=True, redis=True) as base:
        assert base.database_url is not None
        assert base.mongodb_url is not None
        assert base.redis_url is not None
        asyncio.run(_admin_sql(base.database_url, f'CREATE DATABASE "{name}"'))
        url = make_url(base.database_url).set(database=name).render_as_string(hide_password=False)
        settings = base.model_copy(
            update={"database_url": url, "mongodb_database": name, "redis_prefix": name}
        )
        try:
            migrate(url)
            figures = asyncio.run(run(settings, orders, rate))
        finally:
            asyncio.run(_admin_sql(base.database_url, f'DROP DATABASE "{name}" WITH (FORCE)'))
            from pymongo import MongoClient

            client: MongoClient[dict[str, Any]]
            with MongoClient(base.mongodb_url) as client:
                client.drop_database(name)
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
