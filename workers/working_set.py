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
# 10,000 of them are some 25 MB.
DEFAULT_LIMIT = 10_000


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
        self._written = _Written()

    @property
    def full(self) -> bool:
        return len(self.documents) >= self._limit

    async def load(self, keys: Iterable[DocKey]) -> None:
        """Make the current version of every key in `keys` that exists available."""
        missing = [key for key in keys if key not in self.documents and key not in self._known]
        self._known.update(missing)
        # Only a document written by an earlier flush can be in the new generation.
        maybe = [key for key in missing if key in self._written]
        if not maybe:
            return
        found = await read_documents(self._db, self._collections, maybe)
        self.documents.update(found)
        self._stored.update(found)

    def changed(self, keys: Iterable[DocKey]) -> None:
        self._dirty.update(keys)

    async def flush(self) -> None:
        """Write every changed document, then start empty."""
        dirty = {key: self.documents[key] for key in self._dirty}
        new = self._dirty - self._stored
        await write_documents(self._db, self._collections, dirty, new=new)
        self._written.update(dirty)
        self.documents.clear()
        self._known.clear()
        self._stored.clear()
        self._dirty.clear()


class _Written:
    """The keys flushed so far, as a Bloom filter: a few MB for millions of documents.

    A false positive costs one needless read; there are no false negatives.
    """

    BITS = 1 << 24  # 2 MB: about 1% false positives at a million keys
    HASHES = 4

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS // 8)

    def _positions(self, key: DocKey) -> list[int]:
        first = hash(key)
        second = hash((key, 1)) | 1
        return [(first + i * second) % self.BITS for i in range(self.HASHES)]

    def update(self, keys: Iterable[DocKey]) -> None:
        for key in keys:
            for bit in self._positions(key):
                self._bits[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, key: DocKey) -> bool:
        return all(self._bits[bit >> 3] & (1 << (bit & 7)) for bit in self._positions(key))
