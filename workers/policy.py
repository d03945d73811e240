"""The one failure policy of every replay: fold, retry later, or park.

Live projection, rebuild and `shop projections retry` all decide a batch here; they
differ only in how many attempts an event gets (`Policy`). Pure, so the policy is tested
without services.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reads.projection_state import Attempt
from workers.projection import DocKey, Document, Projector, StoredEvent, UndecodableEvent

log = logging.getLogger(__name__)

BASE_BACKOFF = timedelta(milliseconds=100)
PARKED_STREAM = "an earlier event of its stream is parked"


@dataclass(frozen=True)
class Policy:
    """How many times an event is tried before its stream is parked."""

    max_attempts: int


# The live worker retries with backoff: a failure may be a transient fault of the fold's
# inputs. A replay (rebuild, retry of parked events) folds what the live worker already
# failed on or will fold again, so it parks at once.
LIVE = Policy(max_attempts=5)
REPLAY = Policy(max_attempts=1)


@dataclass
class BatchPlan:
    """What one batch will commit."""

    changed: set[DocKey] = field(default_factory=set)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    position: int = 0
    attempt: Attempt | None = None
    error: str | None = None
    handled: int = 0
    # Positions whose fold succeeded (a retry deletes their dead letters).
    applied: list[int] = field(default_factory=list)

    @property
    def ids(self) -> set[str]:
        return {doc_id for _, doc_id in self.changed}


def backoff(count: int) -> timedelta:
    return BASE_BACKOFF * int(2 ** (count - 1))


def letter_id(projection: str, generation: int, position: int) -> str:
    return f"{projection}:{generation}:{position}"


def dead_letter(
    projection: str, generation: int, event: StoredEvent, error: str, now: datetime
) -> dict[str, Any]:
    return {
        "_id": letter_id(projection, generation, event.position),
        "projection": projection,
        "generation": generation,
        "position": event.position,
        "stream_id": event.stream_id,
        "type": event.type,
        "error": error,
        "parked_at": now,
    }


@dataclass
class Touched:
    """What a batch's events touch, asked once before its documents are loaded."""

    keys: set[DocKey] = field(default_factory=set)
    # Positions whose `touches` raised, with the error: `plan_batch` decides them.
    failed: dict[int, Exception] = field(default_factory=dict)


def touched(projector: Projector, events: Iterable[StoredEvent], parked: set[str]) -> Touched:
    """The documents a batch may read, to load before folding it."""
    found = Touched()
    for event in events:
        if event.stream_id not in parked:
            try:
                found.keys.update(_touches(projector, event))
            except Exception as exc:  # decided by plan_batch
                found.failed[event.position] = exc
    return found


def _touches(projector: Projector, event: StoredEvent) -> tuple[DocKey, ...]:
    """What `event` touches; a row that did not decode fails here, so it is retried and
    parked like an event whose fold fails (every projection parks it: none can fold it)."""
    if isinstance(event.event, UndecodableEvent):
        raise event.event.error.with_traceback(None)  # raised again on every attempt
    return projector.touches(event)


def plan_batch(
    projector: Projector,
    generation: int,
    events: list[StoredEvent],
    checkpoint: int,
    parked: set[str],
    previous: Attempt | None,
    now: datetime,
    documents: MutableMapping[DocKey, Document],
    policy: Policy = LIVE,
    addressed: Touched | None = None,
) -> BatchPlan:
    """Fold a batch into `documents` (the touched documents, loaded), deciding each event.

    An event that fails stops the batch before it, to be tried again after a backoff,
    until it has failed `policy.max_attempts` times: then it is parked with every later
    event of its stream, and other streams go on. A failed fold changes nothing. An
    event whose `touches` fails is decided as if its fold had; `addressed` is what
    `touched` found of these events already (else `touches` is asked here).
    """
    plan = BatchPlan(position=checkpoint)
    parked = set(parked)
    for event in events:
        if event.stream_id in parked:
            plan.dead_letters.append(
                dead_letter(projector.name, generation, event, PARKED_STREAM, now)
            )
        else:
            try:
                if addressed is None:
                    _touches(projector, event)  # a poison event may fail here only
                elif failed := addressed.failed.get(event.position):
                    raise failed
                result = projector.fold(event, documents)
            except Exception as exc:
                error = f"{event.type} at {event.position}: {type(exc).__name__}: {exc}"
                count = (
                    previous.count + 1 if previous and previous.position == event.position else 1
                )
                plan.error = error
                if count < policy.max_attempts:
                    plan.attempt = Attempt(event.position, count, error, now + backoff(count))
                    return plan
                log.error("parking %s stream %s after %d attempts", error, event.stream_id, count)
                plan.dead_letters.append(dead_letter(projector.name, generation, event, error, now))
                parked.add(event.stream_id)
            else:
                documents.update(result)
                plan.changed.update(result)
                plan.applied.append(event.position)
        plan.position = event.position
        plan.handled += 1
    return plan
