"""A rebuild's documents in memory: read once, folded many times, written once per flush.

Aggregates (a product's stock, the sales totals) take one write per flush however many
events fold into them. The set holds at most `limit` documents; when full, it writes what
changed and starts empty, so memory stays bounded whatever the log's size. A document
folded after that is read back from the new generation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from workers.document_store import read_documents, write_documents
from workers.projection import DocKey, Document

# Order summaries are the largest documents (about 2 KB in memory with three lines):
# 20,000 of them are some 50 MB.
DEFAULT_LIMIT = 20_000


class WorkingSet:
    def __init__(
        self, db: AsyncDatabase[Any], collections: Mapping[str, str], limit: int = DEFAULT_LIMIT
    ) -> None:
        self._db = db
        self._collections = collections
        self._limit = limit
        self.documents: dict[DocKey, Document] = {}
        # Keys looked up in (or already written to) the new generation since the last
        # flush: a key not among them, nor in `documents`, was never written.
        self._known: set[DocKey] = set()
        self._stored: set[DocKey] = set()
        self._dirty: set[DocKey] = set()
        self._flushed = False

    @property
    def full(self) -> bool:
        return len(self.documents) >= self._limit

    async def load(self, keys: Iterable[DocKey]) -> None:
        """Make the current version of every key in `keys` that exists available."""
        missing = [key for key in keys if key not in self.documents and key not in self._known]
        if not missing:
            return
        self._known.update(missing)
        if not self._flushed:  # nothing has been written yet: nothing to read
            return
        found = await read_documents(self._db, self._collections, missing)
        self.documents.update(found)
        self._stored.update(found)

    def changed(self, keys: Iterable[DocKey]) -> None:
        self._dirty.update(keys)

    async def flush(self) -> None:
        """Write every changed document, then start empty."""
        dirty = {key: self.documents[key] for key in self._dirty}
        new = self._dirty - self._stored
        await write_documents(self._db, self._collections, dirty, new=new)
        self._flushed = self._flushed or bool(dirty)
        self.documents.clear()
        self._known.clear()
        self._stored.clear()
        self._dirty.clear()
