"""`shop projections retry NAME`: replay parked events once their cause is fixed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.log_reader import read_positions
from workers.notifications import publish_batch
from workers.projection import Projector, Write
from workers.runner import CheckpointMoved, apply_writes, dead_letter
from workers.state import DEAD_LETTERS, STATE, load_state

Document = dict[str, Any]


async def retry_parked(
    engine: AsyncEngine,
    client: AsyncMongoClient[Document],
    db: AsyncDatabase[Document],
    projector: Projector,
    redis: Redis,
    redis_prefix: str,
) -> tuple[int, int]:
    """Re-apply parked events in stream order; returns (replayed, still parked).

    A stream whose event fails again stays parked from that event on. The transaction
    writes the state document too, so it serializes with the live runner's batches.
    """
    state = await load_state(db, projector.name)
    letters = (
        await db[DEAD_LETTERS]
        .find({"projection": projector.name, "generation": state.generation})
        .to_list()
    )
    events = await read_positions(engine, [letter["position"] for letter in letters])
    now = datetime.now(UTC)
    writes: list[Write] = []
    replayed: list[str] = []
    still: list[Document] = []
    failed: set[str] = set()
    for event in events:
        letter_id = f"{projector.name}:{state.generation}:{event.position}"
        if event.stream_id in failed:
            reason = "an earlier event of its stream is parked"
            still.append(dead_letter(projector.name, state.generation, event, reason, now))
            continue
        try:
            writes.extend(projector.apply(event))
            replayed.append(letter_id)
        except Exception as exc:
            failed.add(event.stream_id)
            error = f"{event.type} at {event.position}: {type(exc).__name__}: {exc}"
            still.append(dead_letter(projector.name, state.generation, event, error, now))

    async def replay(session: AsyncClientSession) -> None:
        await apply_writes(db, state.collections, writes, session)
        await db[DEAD_LETTERS].delete_many({"_id": {"$in": replayed}}, session=session)
        for letter in still:
            await db[DEAD_LETTERS].replace_one(
                {"_id": letter["_id"]}, letter, upsert=True, session=session
            )
        fenced = await db[STATE].update_one(
            {"_id": projector.name, "generation": state.generation},
            {"$set": {"last_retry_at": now}, "$inc": {"parked_revision": 1}},
            session=session,
        )
        if fenced.matched_count != 1:
            raise CheckpointMoved(projector.name)

    async with client.start_session() as session:
        await session.with_transaction(replay)
    if replayed:
        ids = {write.doc_id for write in writes}
        await publish_batch(redis, redis_prefix, projector.name, ids, state.position)
    return len(replayed), len(still)
