"""What a runner remembers between its batches: the state it last committed and the
documents it last wrote.

Both hold only while nobody else changed the projection. Everything else that changes it
moves a field the batch's commit is fenced on: another owner moves the checkpoint, a
rebuild's swap the generation, `shop projections retry` (which rewrites documents) the
parked revision. So a batch may start from what was remembered, skip reading the state
document and the documents it knows, and still commit nothing stale: if anything moved,
its fence fails, the runner forgets, and the next batch reads everything afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

import bson
from bson.codec_options import CodecOptions

from reads.projection_state import ProjectionState
from workers.projection import DocKey, Document

# Documents kept per runner, least recently used dropped first: enough for the catalog's
# and the dashboard's hot documents, small beside the worker's memory.
CAPACITY = 10_000


class RunnerMemory:
    """The last committed state and the documents written, as MongoDB would return them."""

    def __init__(self, codec_options: CodecOptions[Document], capacity: int = CAPACITY) -> None:
        self._codec_options = codec_options
        self._capacity = capacity
        self.state: ProjectionState | None = None
        self._documents: OrderedDict[DocKey, Document] = OrderedDict()

    def known(self, keys: Iterable[DocKey]) -> tuple[dict[DocKey, Document], list[DocKey]]:
        """The remembered documents among `keys`, and the keys that must be read."""
        found: dict[DocKey, Document] = {}
        unknown: list[DocKey] = []
        for key in keys:
            document = self._documents.get(key)
            if document is None:
                unknown.append(key)
            else:
                self._documents.move_to_end(key)
                found[key] = document
        return found, unknown

    def remember(
        self,
        state: ProjectionState,
        read: Mapping[DocKey, Document],
        written: Mapping[DocKey, Document],
    ) -> None:
        """After a commit: its state, the documents it read, and the ones it wrote as a
        read would return them (BSON keeps milliseconds and, unless the client is
        tz-aware, drops time zones)."""
        self.state = state
        for key, document in read.items():
            self._documents[key] = document
            self._documents.move_to_end(key)
        for key, document in written.items():
            self._documents[key] = bson.decode(
                bson.encode(document), codec_options=self._codec_options
            )
            self._documents.move_to_end(key)
        while len(self._documents) > self._capacity:
            self._documents.popitem(last=False)

    def forget(self) -> None:
        self.state = None
        self._documents.clear()
