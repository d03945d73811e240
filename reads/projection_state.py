"""A projection's state: the collections that hold it, the state document's shape, and the
status an operator sees.

The worker keeps one `STATE` document per projection beside the read models (checkpoint,
generation, physical collection names, lease, retries, and each second the head and lag
it measured), parks failing events in `DEAD_LETTERS` and records its heartbeat in
`WORKERS`. The worker's operations on these live in workers/state.py; the read model,
GraphQL, the CLI, /metrics and /readyz all read them through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase

STATE = "projection_state"
DEAD_LETTERS = "projection_dead_letters"
WORKERS = "projection_workers"

# The one-word states of `describe`, most urgent first.
STATES = ("not_started", "rebuilding", "retrying", "stopped", "parked", "catching_up", "live")

Document = dict[str, Any]


class HasCollections(Protocol):
    """Anything that names its logical collections (a projector)."""

    @property
    def collections(self) -> tuple[str, ...]: ...


def physical_names(projection: HasCollections, generation: int) -> dict[str, str]:
    """Logical -> physical collection names of one generation: generation 0 uses the plain
    names, and a rebuild builds the next generation beside the live one."""
    suffix = "" if generation == 0 else f"__g{generation}"
    return {logical: f"{logical}{suffix}" for logical in projection.collections}


@dataclass(frozen=True)
class Attempt:
    """A failing event being retried with backoff."""

    position: int
    count: int
    error: str
    next_at: datetime


@dataclass(frozen=True)
class ProjectionState:
    """A projection's state document, typed."""

    name: str
    position: int
    generation: int
    collections: dict[str, str]
    owner: str | None
    attempt: Attempt | None
    last_error: str | None
    rebuilding: bool
    # Bumped whenever this projection's dead letters change (parking, retry).
    parked_revision: int = 0

    @classmethod
    def from_document(cls, doc: Document) -> ProjectionState:
        attempt = doc.get("attempt")
        return cls(
            name=doc["_id"],
            position=doc["position"],
            generation=doc["generation"],
            collections=doc["collections"],
            owner=doc.get("owner"),
            attempt=Attempt(**attempt) if attempt else None,
            last_error=doc.get("last_error"),
            rebuilding=bool(doc.get("rebuilding")),
            parked_revision=doc.get("parked_revision", 0),
        )


def lease_live(doc: Document | None, now: datetime) -> bool:
    """A worker holds the projection's lease and it has not expired."""
    if not doc or doc.get("owner") is None:
        return False
    lease_until = doc.get("lease_until")
    return lease_until is not None and lease_until >= now


def describe(doc: Document | None, lag_events: int, parked: int, now: datetime) -> str:
    """One word (of `STATES`) for the operator, most urgent first."""
    if doc is None:
        return "not_started"
    if doc.get("rebuilding"):
        return "rebuilding"
    if doc.get("attempt"):
        return "retrying"
    if not lease_live(doc, now):
        return "stopped"
    if parked:
        return "parked"
    return "catching_up" if lag_events else "live"


@dataclass(frozen=True)
class ProjectionStatus:
    """Where a projection stands, as the CLI, GraphQL and operators see it."""

    name: str
    position: int
    head_position: int
    lag_events: int
    lag_ms: int
    state: str
    parked: int
    last_error: str | None
    owner: str | None

    @classmethod
    def of(
        cls,
        name: str,
        doc: Document | None,
        *,
        head_position: int,
        lag_events: int,
        lag_ms: int,
        parked: int,
        now: datetime,
    ) -> ProjectionStatus:
        """From the state document (None: never ran), its parked count and a lag."""
        position = int(doc["position"]) if doc else 0
        return cls(
            name=name,
            position=position,
            # The head is read apart from the checkpoint, which may have passed it since.
            head_position=max(head_position, position),
            lag_events=lag_events,
            lag_ms=lag_ms,
            state=describe(doc, lag_events, parked, now),
            parked=parked,
            last_error=doc.get("last_error") if doc else None,
            owner=doc.get("owner") if doc else None,
        )

    @classmethod
    def recorded(cls, doc: Document, parked: int, now: datetime) -> ProjectionStatus:
        """From the state document alone, with the head and lag the worker last recorded
        in it (it does so every second while it holds the lease)."""
        return cls.of(
            doc["_id"],
            doc,
            head_position=int(doc.get("head_position", 0)),
            lag_events=int(doc.get("lag_events", 0)),
            lag_ms=int(doc.get("lag_ms", 0)),
            parked=parked,
            now=now,
        )


async def parked_counts(db: AsyncDatabase[Document]) -> dict[tuple[str, int], int]:
    """Parked events by (projection, generation)."""
    counts: dict[tuple[str, int], int] = {}
    async for group in await db[DEAD_LETTERS].aggregate(
        [{"$group": {"_id": {"p": "$projection", "g": "$generation"}, "n": {"$sum": 1}}}]
    ):
        counts[(group["_id"]["p"], group["_id"]["g"])] = group["n"]
    return counts
