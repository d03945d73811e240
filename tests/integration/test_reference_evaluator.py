"""The in-memory evaluator of the pre-fold update operators agrees with MongoDB itself.

tests/unit/test_fold_equivalence.py trusts `evaluate` as its oracle; here the very same
requests of generated histories go to a real MongoDB (ordered bulk writes, as the old
runner sent them) and the stored documents must equal the evaluator's, field for field.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from app.bootstrap import build_mongo
from app.settings import Settings
from tests.reference.histories import STEPS, history
from tests.reference.update_projectors import REFERENCE, evaluate
from workers.projectors import PROJECTORS

SEEDS = range(6)


def draws(seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    return [(rng.choice(STEPS), rng.randrange(2**32)) for _ in range(60)]


@pytest.mark.parametrize("seed", SEEDS)
async def test_the_evaluator_stores_what_mongodb_stores(settings: Settings, seed: int) -> None:
    events = history(draws(seed))
    assert len(events) > 30
    client: Any = build_mongo(settings, patient=True)
    name = f"{settings.mongodb_database}_oracle_{uuid.uuid4().hex[:8]}"
    db = client[name]
    try:
        for projection, reference in REFERENCE.items():
            expected: dict[tuple[str, str], dict[str, Any]] = {}
            for event in events:
                updates = reference(event)
                evaluate(updates, expected)
                for update in updates:  # one request at a time: the order matters
                    await db[update.collection].bulk_write([update.as_pymongo()], ordered=True)
            stored = {
                (collection, doc["_id"]): doc
                for collection in PROJECTORS[projection].collections
                async for doc in db[collection].find()
            }
            assert stored == expected, projection
    finally:
        await client.drop_database(name)
        await client.close()
