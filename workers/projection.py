"""What every projector shares: the stored event it reads and the documents it folds.

A projector is a pure fold. `touches(event)` names the documents an event reads and may
change; `fold(event, documents)` takes their current versions (a key that is absent is a
document that does not exist) and returns the new versions of the ones it changed,
without changing its inputs. The runner reads a batch's touched documents once, folds
every event of the batch in memory and writes each changed document once, with the
checkpoint, in one MongoDB transaction: replaying a batch never double-counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# A document of one of the projector's collections: (logical collection, _id).
DocKey = tuple[str, str]
Document = dict[str, Any]
Documents = Mapping[DocKey, Document]


@dataclass(frozen=True)
class StoredEvent:
    """One row of the event log, as projectors see it."""

    position: int
    stream_type: str
    stream_id: str
    stream_version: int
    type: str
    data: dict[str, Any]
    recorded_at: datetime


class Projector(Protocol):
    """One read model: its name, the collections it owns and how events change them."""

    name: str
    collections: tuple[str, ...]

    def touches(self, event: StoredEvent) -> tuple[DocKey, ...]:
        """The documents `event` reads and may change; () for events this projector ignores."""
        ...

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        """The new versions of the documents `event` changes, `_id` included.

        `documents` holds the current version of every existing document `touches` named.
        The result shares nothing mutable with `documents`' values that it changes, so a
        fold that raises half way leaves them as they were.
        """
        ...


def fold_events(
    projector: Projector, events: Iterable[StoredEvent], documents: MutableMapping[DocKey, Document]
) -> set[DocKey]:
    """Fold `events` in order into `documents` (the working set); the keys they changed."""
    changed: set[DocKey] = set()
    for event in events:
        result = projector.fold(event, documents)
        documents.update(result)
        changed.update(result)
    return changed
