"""What every projector shares: the stored event it reads and the documents it folds.

The log reader turns each row back into its event dataclass before any projector sees
it; a projector matches on the class. A row of a type this code does not know becomes an
`UnknownEvent`, which every projector ignores; a row that does not decode becomes an
`UndecodableEvent`, which the failure policy (workers.policy) decides as it decides a
fold that raises.

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

from writes.events import DomainEvent

# A document of one of the projector's collections: (logical collection, _id). Its
# shape is the collection's type in reads.documents, which the projector builds.
DocKey = tuple[str, str]
Document = Mapping[str, Any]
Documents = Mapping[DocKey, Document]


@dataclass(frozen=True)
class UnknownEvent:
    """A row whose type this code does not know (newer code wrote it): ignored."""

    type: str


@dataclass(frozen=True)
class UndecodableEvent:
    """A row of a known type that does not decode, with why: it fails where it is folded."""

    type: str
    error: Exception


@dataclass(frozen=True)
class StoredEvent:
    """One row of the event log, as projectors see it: its event decoded."""

    position: int
    stream_type: str
    stream_id: str
    stream_version: int
    event: DomainEvent | UnknownEvent | UndecodableEvent
    recorded_at: datetime

    @property
    def type(self) -> str:
        """The row's type name (dead letters and errors name it)."""
        event = self.event
        if isinstance(event, UnknownEvent | UndecodableEvent):
            return event.type
        return type(event).__name__


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
