"""The runner's failure policy, without services: retry with backoff, then park the stream."""

from __future__ import annotations

from datetime import UTC, datetime

from reads.projection_state import Attempt
from workers.log_reader import decode_row
from workers.policy import LIVE, REPLAY, BatchPlan, Policy, backoff, plan_batch, touched
from workers.projection import DocKey, Document, Documents, StoredEvent, UndecodableEvent
from writes.events import OrderShipped

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Fragile:
    """Counts each stream's events in a document of its own; fails on every event of the
    streams named `poisoned` (in `touches` for those named `unaddressable`)."""

    name = "fragile"
    collections: tuple[str, ...] = ("things",)

    def __init__(self, poisoned: set[str], unaddressable: frozenset[str] = frozenset()) -> None:
        self.poisoned = poisoned
        self.unaddressable = unaddressable

    def touches(self, event: StoredEvent) -> tuple[DocKey, ...]:
        if event.stream_id in self.unaddressable:
            raise KeyError("no id in this payload")
        return (("things", event.stream_id),)

    def fold(self, event: StoredEvent, documents: Documents) -> dict[DocKey, Document]:
        key = ("things", event.stream_id)
        if event.stream_id in self.poisoned:
            raise ValueError("cannot digest this")
        count = documents.get(key, {}).get("count", 0)
        return {key: {"_id": event.stream_id, "count": count + 1, "position": event.position}}


def plan(
    projector: Fragile,
    generation: int,
    batch: list[StoredEvent],
    checkpoint: int,
    parked: set[str],
    previous: Attempt | None,
    policy: Policy = LIVE,
) -> tuple[BatchPlan, dict[DocKey, Document]]:
    documents: dict[DocKey, Document] = {}
    decided = plan_batch(projector, generation, batch, checkpoint, parked, previous, NOW,
                         documents, policy)  # fmt: skip
    return decided, documents


def ids(decided: BatchPlan) -> list[str]:
    return sorted(decided.ids)


def events(*streams: str, start: int = 1) -> list[StoredEvent]:
    return [
        StoredEvent(start + i, "order", stream, 1, OrderShipped(stream, "c", NOW.isoformat()), NOW)
        for i, stream in enumerate(streams)
    ]


def test_a_clean_batch_folds_every_event_and_advances() -> None:
    decided, documents = plan(Fragile(set()), 0, events("a", "b", "a"), 0, set(), None)

    assert ids(decided) == ["a", "b"]
    assert documents[("things", "a")] == {"_id": "a", "count": 2, "position": 3}
    assert decided.applied == [1, 2, 3]
    assert (decided.position, decided.handled, decided.attempt, decided.dead_letters) == (
        3, 3, None, [],
    )  # fmt: skip


def test_a_first_failure_stops_before_the_event_and_schedules_a_retry() -> None:
    decided, documents = plan(Fragile({"b"}), 0, events("a", "b", "c"), 0, set(), None)

    assert ids(decided) == ["a"]
    assert ("things", "c") not in documents
    assert decided.position == 1
    assert decided.attempt is not None
    assert (decided.attempt.position, decided.attempt.count) == (2, 1)
    assert decided.attempt.next_at == NOW + backoff(1)
    assert "ValueError: cannot digest this" in (decided.error or "")


def test_retries_back_off_exponentially() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.8]


def test_after_the_last_attempt_the_stream_parks_and_the_others_go_on() -> None:
    previous = Attempt(position=2, count=LIVE.max_attempts - 1, error="x", next_at=NOW)
    batch = events("a", "b", "c", "b", "d")

    decided, documents = plan(Fragile({"b"}), 7, batch, 1, set(), previous)

    assert ids(decided) == ["a", "c", "d"]
    assert ("things", "b") not in documents
    assert [(d["position"], d["stream_id"], d["generation"]) for d in decided.dead_letters] == [
        (2, "b", 7),
        (4, "b", 7),
    ]
    assert decided.dead_letters[1]["error"] == "an earlier event of its stream is parked"
    assert decided.position == 5
    assert decided.attempt is None


def test_events_of_an_already_parked_stream_park_without_being_folded() -> None:
    decided, documents = plan(Fragile(set()), 0, events("a", "p", "b"), 0, {"p"}, None)

    assert ids(decided) == ["a", "b"]
    assert ("things", "p") not in documents
    assert [d["stream_id"] for d in decided.dead_letters] == ["p"]
    assert decided.position == 3


def test_an_attempt_count_belongs_to_its_event() -> None:
    # A retry record for another position does not count against this event.
    previous = Attempt(position=99, count=LIVE.max_attempts - 1, error="x", next_at=NOW)

    decided, _ = plan(Fragile({"a"}), 0, events("a"), 0, set(), previous)

    assert decided.attempt is not None
    assert decided.attempt.count == 1
    assert decided.dead_letters == []


def test_a_replay_parks_at_the_first_failure_and_folds_the_rest() -> None:
    decided, documents = plan(Fragile({"b"}), 3, events("a", "b", "c"), 0, set(), None, REPLAY)

    assert decided.attempt is None
    assert [d["position"] for d in decided.dead_letters] == [2]
    assert ids(decided) == ["a", "c"]
    assert decided.applied == [1, 3]
    assert documents[("things", "c")]["count"] == 1


def test_an_event_whose_documents_cannot_be_named_fails_like_a_fold() -> None:
    projector = Fragile(set(), unaddressable=frozenset({"b"}))
    batch = events("a", "b", "c")

    # The loader leaves it out rather than failing the whole batch...
    found = touched(projector, batch, set())
    assert found.keys == {("things", "a"), ("things", "c")}
    assert list(found.failed) == [2]
    # ... and the policy decides it as it would a failing fold, whether it asks itself
    # or is told what the loader found.
    decided, _ = plan(projector, 0, batch, 0, set(), None)
    told = plan_batch(projector, 0, batch, 0, set(), None, NOW, {}, LIVE, found)
    for outcome in (decided, told):
        assert outcome.attempt is not None
        assert outcome.attempt.position == 2
        assert "KeyError" in (outcome.error or "")


def test_the_loader_skips_parked_streams() -> None:
    assert touched(Fragile(set()), events("a", "p"), {"p"}).keys == {("things", "a")}


def undecodable(stream: str, position: int) -> StoredEvent:
    """An OrderShipped row without its `shipped_at`, as the log reader hands it on."""
    row = decode_row("OrderShipped", 1, {"order_id": stream, "customer_id": "c"})
    assert isinstance(row, UndecodableEvent)
    return StoredEvent(position, "order", stream, 2, row, NOW)


def test_a_row_that_does_not_decode_is_retried_then_parked_like_a_failing_fold() -> None:
    batch = [*events("a"), undecodable("b", 2), *events("c", start=3)]

    first, documents = plan(Fragile(set()), 0, batch, 0, set(), None)
    assert (first.position, ids(first)) == (1, ["a"])
    assert first.attempt is not None
    assert first.attempt.position == 2
    assert "OrderShipped at 2: EventDecodeError: OrderShipped v1:" in (first.error or "")
    assert "shipped_at" in (first.error or "")

    last = Attempt(position=2, count=LIVE.max_attempts - 1, error="x", next_at=NOW)
    parked, documents = plan(Fragile(set()), 0, batch, 0, set(), last)
    assert [(d["position"], d["type"]) for d in parked.dead_letters] == [(2, "OrderShipped")]
    assert (parked.position, ids(parked), parked.attempt) == (3, ["a", "c"], None)
    assert ("things", "b") not in documents
    # The loader leaves it out, as it does an event whose documents cannot be named.
    found = touched(Fragile(set()), batch, set())
    assert (found.keys, list(found.failed)) == ({("things", "a"), ("things", "c")}, [2])
