"""A projection's documents in MongoDB: read the ones a batch touches, write the changed.

Both take the logical -> physical collection names of the generation being written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import InsertOne, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from workers.projection import DocKey, Document


def by_collection(keys: Iterable[DocKey]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for logical, doc_id in keys:
        grouped[logical].append(doc_id)
    return grouped


async def read_documents(
    db: AsyncDatabase[Any],
    collections: Mapping[str, str],
    keys: Iterable[DocKey],
    session: AsyncClientSession | None = None,
) -> dict[DocKey, Document]:
    """The existing documents among `keys`: one query per collection."""
    found: dict[DocKey, Document] = {}
    for logical, ids in by_collection(keys).items():
        cursor = db[collections[logical]].find({"_id": {"$in": ids}}, session=session)
        async for document in cursor:
            found[(logical, document["_id"])] = document
    return found


async def write_documents(
    db: AsyncDatabase[Any],
    collections: Mapping[str, str],
    documents: Mapping[DocKey, Document],
    session: AsyncClientSession | None = None,
    *,
    new: frozenset[DocKey] | set[DocKey] = frozenset(),
) -> None:
    """Write each document whole, once: unordered, since no two writes share a document.

    Documents in `new` are known not to exist yet (a rebuild's first flush of them) and
    are inserted; the others replace or create theirs.
    """
    grouped: dict[str, list[InsertOne[Any] | ReplaceOne[Any]]] = defaultdict(list)
    for key, document in documents.items():
        logical, doc_id = key
        grouped[logical].append(
            InsertOne(document)
            if key in new
            else ReplaceOne({"_id": doc_id}, document, upsert=True)
        )
    for logical, requests in grouped.items():
        await db[collections[logical]].bulk_write(requests, ordered=False, session=session)
