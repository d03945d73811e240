"""The runner's failure policy, without services: retry with backoff, then park the stream."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import UpdateOne

from workers.projection import StoredEvent, Write
from workers.runner import MAX_ATTEMPTS, backoff, plan_batch
from workers.state import Attempt

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Fragile:
    """Fails on every event of the streams named `poisoned`."""

    name = "fragile"
    collections: tuple[str, ...] = ("things",)

    def __init__(self, poisoned: set[str]) -> None:
        self.poisoned = poisoned

    def apply(self, event: StoredEvent) -> list[Write]:
        if event.stream_id in self.poisoned:
            raise ValueError("cannot digest this")
        op = UpdateOne({"_id": event.stream_id}, {"$set": {"position": event.position}})
        return [Write("things", event.stream_id, op)]


def events(*streams: str, start: int = 1) -> list[StoredEvent]:
    return [
        StoredEvent(start + i, "order", stream, 1, "OrderPlaced", {}, NOW)
        for i, stream in enumerate(streams)
    ]


def test_a_clean_batch_applies_every_event_and_advances() -> None:
    plan = plan_batch(Fragile(set()), 0, events("a", "b", "c"), 0, set(), None, NOW)

    assert [w.doc_id for w in plan.writes] == ["a", "b", "c"]
    assert (plan.position, plan.handled, plan.attempt, plan.dead_letters) == (3, 3, None, [])


def test_a_first_failure_stops_before_the_event_and_schedules_a_retry() -> None:
    plan = plan_batch(Fragile({"b"}), 0, events("a", "b", "c"), 0, set(), None, NOW)

    assert [w.doc_id for w in plan.writes] == ["a"]
    assert plan.position == 1
    assert plan.attempt is not None
    assert (plan.attempt.position, plan.attempt.count) == (2, 1)
    assert plan.attempt.next_at == NOW + backoff(1)
    assert "ValueError: cannot digest this" in (plan.error or "")


def test_retries_back_off_exponentially() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.8]


def test_after_the_last_attempt_the_stream_parks_and_the_others_go_on() -> None:
    previous = Attempt(position=2, count=MAX_ATTEMPTS - 1, error="x", next_at=NOW)
    batch = events("a", "b", "c", "b", "d")

    plan = plan_batch(Fragile({"b"}), 7, batch, 1, set(), previous, NOW)

    assert [w.doc_id for w in plan.writes] == ["a", "c", "d"]
    assert [(d["position"], d["stream_id"], d["generation"]) for d in plan.dead_letters] == [
        (2, "b", 7),
        (4, "b", 7),
    ]
    assert plan.dead_letters[1]["error"] == "an earlier event of its stream is parked"
    assert plan.position == 5
    assert plan.attempt is None


def test_events_of_an_already_parked_stream_park_without_being_applied() -> None:
    plan = plan_batch(Fragile(set()), 0, events("a", "p", "b"), 0, {"p"}, None, NOW)

    assert [w.doc_id for w in plan.writes] == ["a", "b"]
    assert [d["stream_id"] for d in plan.dead_letters] == ["p"]
    assert plan.position == 3


def test_an_attempt_count_belongs_to_its_event() -> None:
    # A retry record for another position does not count against this event.
    previous = Attempt(position=99, count=MAX_ATTEMPTS - 1, error="x", next_at=NOW)

    plan = plan_batch(Fragile({"a"}), 0, events("a"), 0, set(), previous, NOW)

    assert plan.attempt is not None
    assert plan.attempt.count == 1
    assert plan.dead_letters == []
