"""`shop projections retry NAME`: replay parked events once their cause is fixed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from reads.projection_state import DEAD_LETTERS, STATE
from workers.document_store import read_documents, write_documents
from workers.log_reader import read_positions
from workers.notifications import publish_batch
from workers.policy import REPLAY, BatchPlan, letter_id, plan_batch, touched
from workers.projection import Projector
from workers.runner import CheckpointMoved
from workers.state import load_state

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
    reads the documents it folds and writes the state document too, so it serializes
    with the live runner's batches (a write conflict runs it again).
    """
    state = await load_state(db, projector.name)
    letters = (
        await db[DEAD_LETTERS]
        .find({"projection": projector.name, "generation": state.generation})
        .to_list()
    )
    events = await read_positions(engine, [letter["position"] for letter in letters])
    now = datetime.now(UTC)
    addressed = touched(projector, events, set())

    async def replay(session: AsyncClientSession) -> BatchPlan:
        documents = await read_documents(db, state.collections, addressed.keys, session)
        plan = plan_batch(projector, state.generation, events, state.position, set(), None,
                          now, documents, REPLAY, addressed)  # fmt: skip
        changed = {key: documents[key] for key in plan.changed}
        await write_documents(db, state.collections, changed, session)
        replayed = [letter_id(projector.name, state.generation, p) for p in plan.applied]
        await db[DEAD_LETTERS].delete_many({"_id": {"$in": replayed}}, session=session)
        for letter in plan.dead_letters:
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
        return plan

    async with client.start_session() as session:
        plan = await session.with_transaction(replay)
    if plan.applied:
        await publish_batch(
            redis, redis_prefix, projector.name, plan.ids, state.position, after=state.position
        )
    return len(plan.applied), len(plan.dead_letters)
