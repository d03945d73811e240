"""A rebuild's documents in memory: read once, folded many times, written once per flush.

Aggregates (a product's stock, the sales totals, a customer's counts) take one write per
flush however many events fold into them. The set holds documents up to a memory budget;
when full, it writes what changed and starts empty, so memory stays bounded whatever the
log's size. A document folded after that is read back from the new generation.

The budget is in bytes, not documents: an order summary takes about four times the
memory of a customer, and a set that holds every customer of a large shop spares the
rebuild reading and writing each of them again after every flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import bson
from pymongo.asynchronous.database import AsyncDatabase

from workers.document_store import read_documents, write_documents
from workers.projection import DocKey, Document

# About 6,500 order summaries with three lines, or 23,000 customers; a flush being
# written holds as much again.
DEFAULT_BUDGET_BYTES = 16 << 20
# A document in memory takes about three times its BSON size (dicts, strings, datetimes),
# plus its key in the set; measured on order summaries and customers.
MEMORY_PER_BSON_BYTE = 3
KEY_BYTES = 150
# How many documents the estimate of a document's size is taken from, once; until then
# each counts for GUESSED_BYTES.
SAMPLE = 64
GUESSED_BYTES = 1024


class WorkingSet:
    def __init__(
        self,
        db: AsyncDatabase[Any],
        collections: Mapping[str, str],
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self._db = db
        self._collections = collections
        self._budget = budget_bytes
        self._bytes_per_document: int | None = None
        self.documents: dict[DocKey, Document] = {}
        # Keys looked up in (or already written to) the new generation since the last
        # flush: a key not among them, nor in `documents`, was never written.
        self._known: set[DocKey] = set()
        self._stored: set[DocKey] = set()
        self._dirty: set[DocKey] = set()
        self._written = WrittenKeys()
        # The flush being written while folding goes on (at most one), and its documents.
        self._writing: asyncio.Task[None] | None = None
        self._flushing: dict[DocKey, Document] = {}

    @property
    def full(self) -> bool:
        held = len(self.documents)
        if self._bytes_per_document is None:
            if held < SAMPLE:
                return held * GUESSED_BYTES >= self._budget
            sample = itertools.islice(self.documents.values(), SAMPLE)
            bson_bytes = sum(len(bson.encode(document)) for document in sample) / SAMPLE
            self._bytes_per_document = int(bson_bytes * MEMORY_PER_BSON_BYTE) + KEY_BYTES
        return held * self._bytes_per_document >= self._budget

    async def load(self, keys: Iterable[DocKey]) -> None:
        """Make the current version of every key in `keys` that exists available."""
        missing = [key for key in keys if key not in self.documents and key not in self._known]
        self._known.update(missing)
        maybe = []
        for key in missing:
            if key in self._flushing:  # being written: its latest version is at hand
                self.documents[key] = self._flushing[key]
                self._stored.add(key)
            elif key in self._written:  # only what an earlier flush wrote can be there
                maybe.append(key)
        if not maybe:
            return
        found = await read_documents(self._db, self._collections, maybe)
        self.documents.update(found)
        self._stored.update(found)

    def changed(self, keys: Iterable[DocKey]) -> None:
        self._dirty.update(keys)

    async def flush(self, *, wait: bool = False) -> None:
        """Write every changed document and start empty.

        The write goes on while the caller folds the next pages (MongoDB and this process
        work at the same time); the previous flush ends first, so the writes of one
        document land in order. `wait` returns once this one is written too.
        """
        await self.settle()
        dirty = {key: self.documents[key] for key in self._dirty}
        new = self._dirty - self._stored
        self._written.update(dirty)
        self._flushing = dirty
        self._writing = asyncio.create_task(
            write_documents(self._db, self._collections, dirty, new=new)
        )
        self.documents = {}
        self._known.clear()
        self._stored.clear()
        self._dirty.clear()
        if wait:
            await self.settle()

    async def settle(self) -> None:
        """Wait for the flush being written (raising its error)."""
        writing, self._writing = self._writing, None
        try:
            if writing is not None:
                await writing
        finally:
            self._flushing = {}

    async def close(self) -> None:
        """Stop a flush still being written (the rebuild is given up)."""
        if self._writing is not None:
            self._writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writing
        self._writing, self._flushing = None, {}


class WrittenKeys:
    """The keys flushed so far, as a Bloom filter: a few MB for millions of documents.

    A false positive costs one needless read; there are no false negatives. Two bit
    positions come from the two halves of one 64-bit hash (Python caches string hashes):
    about 1.5% false positives at a million keys.
    """

    BITS = 1 << 24  # 2 MB
    _MASK = BITS - 1

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS // 8)

    def update(self, keys: Iterable[DocKey]) -> None:
        bits, mask = self._bits, self._MASK
        for key in keys:
            hashed = hash(key)
            low, high = hashed & mask, (hashed >> 32) & mask
            bits[low >> 3] |= 1 << (low & 7)
            bits[high >> 3] |= 1 << (high & 7)

    def __contains__(self, key: DocKey) -> bool:
        hashed = hash(key)
        low, high = hashed & self._MASK, (hashed >> 32) & self._MASK
        return bool(
            self._bits[low >> 3] & (1 << (low & 7)) and self._bits[high >> 3] & (1 << (high & 7))
        )
