"""B4's baseline: the least a projector of orders can do, run as its own process.

The same wake-up as the worker (the commit's pub/sub nudge on the wake channel, and a
look every second), then per batch of the log: for each OrderPlaced one `find_one` and one
`replace_one(upsert=True)` of its summary with plain PyMongo, no transaction, no
checkpoint, no lease, no failure policy; then the same batch notification the worker
publishes, so the API pushes to subscribers exactly as it does for the worker. It builds
the summary the orders projection builds, so the documents it leaves are the ones the
worker writes again when it catches up after a raw round.

Run by bench.lag (`python -m bench.raw_projector`, the stack's environment) while the
worker is stopped; it starts at the log's head and runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis

from app.bootstrap import build_mongo, load_settings
from bench.stack import libpq
from reads.documents import event_time
from workers.notifications import projections_channel
from writes.nudge import wake_channel

BATCH = 500
POLL_S = 1.0
READ = (
    "SELECT position, stream_version, data::text FROM event_log "
    "WHERE position > $1 AND type = 'OrderPlaced' ORDER BY position LIMIT $2"
)


def summary(data: dict[str, Any], version: int, position: int) -> dict[str, Any]:
    placed_at = event_time(data["placed_at"])
    customer = data["customer"]
    return {
        "_id": data["order_id"],
        "customer": {"id": customer["id"], "name": customer["name"], "email": customer["email"]},
        "status": "PLACED",
        "lines": [
            {key: line[key] for key in ("product_id", "sku", "name", "unit_price_cents",
                                        "quantity", "line_total_cents")}
            for line in data["lines"]
        ],
        "item_count": data["item_count"],
        "total_cents": data["total_cents"],
        "placed_at": placed_at,
        "updated_at": placed_at,
        "version": version,
        "position": position,
    }  # fmt: skip


async def main() -> None:
    prefix = os.environ["REDIS_PREFIX"]
    pg = await asyncpg.connect(libpq(os.environ["DATABASE_URL"]))
    mongo = build_mongo(load_settings(), patient=True)  # the service's client, as configured
    orders = mongo[os.environ["MONGODB_DATABASE"]]["orders"]
    redis = Redis.from_url(os.environ["REDIS_URL"])
    woken = asyncio.Event()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    position = int(await pg.fetchval("SELECT coalesce(max(position), 0) FROM event_log"))

    async def listen() -> None:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(wake_channel(prefix))
            print("raw projector ready", file=sys.stderr, flush=True)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    woken.set()

    listener = asyncio.create_task(listen())
    try:
        while not stop.is_set():
            woken.clear()
            rows = await pg.fetch(READ, position, BATCH)
            ids = []
            for row in rows:
                document = summary(orjson.loads(row["data"]), row["stream_version"],
                                   row["position"])  # fmt: skip
                await orders.find_one({"_id": document["_id"]})
                await orders.replace_one({"_id": document["_id"]}, document, upsert=True)
                ids.append(document["_id"])
                position = row["position"]
            if ids:
                message = {"projection": "orders", "ids": sorted(ids), "position": position}
                await redis.publish(projections_channel(prefix), orjson.dumps(message))
            if len(rows) < BATCH:
                waits = [asyncio.ensure_future(woken.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waits, timeout=POLL_S, return_when=asyncio.FIRST_COMPLETED)
                for waiting in waits:
                    waiting.cancel()
    finally:
        listener.cancel()
        await pg.close()
        await mongo.close()
        await redis.aclose()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
