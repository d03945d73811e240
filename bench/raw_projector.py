"""B4's baseline: the least a projector can do with the worker's four projections, run as
its own process.

The same wake-up as the worker (the commit's pub/sub nudge on the wake channel, and a
look every second), then per batch of the log and per projection: one `find_one` of
each document the batch touches, the batch folded over them in memory, one
`replace_one(upsert=True)` of each changed document, with plain PyMongo, no
transaction, no checkpoint, no lease, no failure policy; then the same batch
notification the worker publishes, so the API pushes to subscribers exactly as it does
for the worker. It calls the projectors' own pure folds, so it builds the documents the
worker builds and the comparison is of what the engine adds around them.

Order summaries go where the API reads them, so subscribers are pushed (a placement's
summary is built whole, so the worker writing it again after a raw round changes
nothing); the other projections' documents go into copies taken when it starts
(`raw_<collection>`): folding the same events twice into the worker's own stock, sales
and customer documents would count them twice when the worker catches up.

`RAW_PROJECTIONS` (comma-separated, default all four) narrows it: `orders` alone is the
floor, the least any projector could do for the one document B4 watches.

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
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from app.bootstrap import build_mongo, load_settings
from bench.stack import libpq
from reads.projection_state import STATE
from workers.log_reader import decode_row
from workers.notifications import projections_channel
from workers.projection import DocKey, Document, Projector, StoredEvent, fold_events
from workers.projectors import PROJECTORS
from writes.nudge import wake_channel

BATCH = 500
POLL_S = 1.0
READ = (
    "SELECT position, stream_type, stream_id, stream_version, type, "
    "(metadata ->> 'schema_version')::int AS schema_version, data::text, recorded_at "
    "FROM event_log WHERE position > $1 ORDER BY position LIMIT $2"
)


def stored(row: asyncpg.Record) -> StoredEvent:
    """The row decoded into its event, as the worker's log reader decodes it."""
    event = decode_row(row["type"], row["schema_version"], orjson.loads(row["data"]))
    return StoredEvent(
        position=row["position"], stream_type=row["stream_type"], stream_id=row["stream_id"],
        stream_version=row["stream_version"], event=event, recorded_at=row["recorded_at"],
    )  # fmt: skip


async def target_collections(
    db: AsyncDatabase[Document], projectors: list[Projector]
) -> dict[str, str]:
    """Logical -> physical collection each raw fold writes: the live orders collection,
    fresh copies of the others."""
    names: dict[str, str] = {}
    for projector in projectors:
        state = await db[STATE].find_one({"_id": projector.name})
        live = state["collections"] if state else {c: c for c in projector.collections}
        for logical, physical in live.items():
            if projector.name == "orders":
                names[logical] = physical
                continue
            names[logical] = f"raw_{logical}"
            await (await db[physical].aggregate([{"$out": names[logical]}])).to_list()
    return names


async def project(
    db: AsyncDatabase[Document],
    names: dict[str, str],
    projector: Projector,
    events: list[StoredEvent],
) -> set[str]:
    """Fold a batch over its touched documents, read and written one at a time; the ids
    of the documents written."""
    documents: dict[DocKey, Document] = {}
    for key in dict.fromkeys(key for event in events for key in projector.touches(event)):
        logical, doc_id = key
        document = await db[names[logical]].find_one({"_id": doc_id})
        if document is not None:
            documents[key] = document
    changed = fold_events(projector, events, documents)
    for logical, doc_id in changed:
        document = documents[(logical, doc_id)]
        await db[names[logical]].replace_one({"_id": doc_id}, document, upsert=True)
    return {doc_id for _, doc_id in changed}


async def main() -> None:
    prefix = os.environ["REDIS_PREFIX"]
    pg = await asyncpg.connect(libpq(os.environ["DATABASE_URL"]))
    mongo = build_mongo(load_settings(), patient=True)  # the service's client, as configured
    db: AsyncDatabase[Any] = mongo[os.environ["MONGODB_DATABASE"]]
    redis = Redis.from_url(os.environ["REDIS_URL"])
    woken = asyncio.Event()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    position = int(await pg.fetchval("SELECT coalesce(max(position), 0) FROM event_log"))
    chosen = os.environ.get("RAW_PROJECTIONS", ",".join(PROJECTORS)).split(",")
    projectors = [PROJECTORS[name] for name in chosen]
    names = await target_collections(db, projectors)

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
            events = [stored(row) for row in await pg.fetch(READ, position, BATCH)]
            if events:
                position = events[-1].position
            for projector in projectors:
                ids = await project(db, names, projector, events)
                if ids:
                    message = {
                        "projection": projector.name,
                        "ids": sorted(ids),
                        "position": position,
                    }
                    await redis.publish(projections_channel(prefix), orjson.dumps(message))
            if len(events) < BATCH:
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
