"""What a runner remembers between batches: documents as a read would return them, bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from bson.codec_options import CodecOptions

from reads.projection_state import ProjectionState
from workers.projection import Document
from workers.runner_memory import RunnerMemory

STATE = ProjectionState(
    name="sales", position=7, generation=0, collections={"sales_totals": "sales_totals"},
    owner="w", attempt=None, last_error=None, rebuilding=False,
)  # fmt: skip


def test_written_documents_are_remembered_as_mongodb_returns_them() -> None:
    memory = RunnerMemory(CodecOptions[Document]())
    at = datetime(2026, 12, 3, 8, 0, 0, 123456, tzinfo=UTC)
    memory.remember(STATE, {}, {("sales_totals", "all"): {"_id": "all", "updated_at": at}})
    found, unknown = memory.known([("sales_totals", "all"), ("sales_totals", "other")])
    # BSON keeps milliseconds and, for a client that is not tz-aware, no time zone.
    assert found == {("sales_totals", "all"): {"_id": "all", "updated_at": datetime(
        2026, 12, 3, 8, 0, 0, 123000)}}  # fmt: skip
    assert unknown == [("sales_totals", "other")]
    assert memory.state == STATE


def test_read_documents_are_kept_as_read() -> None:
    memory = RunnerMemory(CodecOptions[Document]())
    read = {"_id": "p1", "stock": 3}
    memory.remember(STATE, {("products", "p1"): read}, {})
    assert memory.known([("products", "p1")]) == ({("products", "p1"): read}, [])


def test_the_least_recently_used_documents_go_first() -> None:
    memory = RunnerMemory(CodecOptions[Document](), capacity=2)
    memory.remember(STATE, {("p", "a"): {"_id": "a"}, ("p", "b"): {"_id": "b"}}, {})
    memory.known([("p", "a")])  # a is used again: b is now the oldest
    memory.remember(STATE, {("p", "c"): {"_id": "c"}}, {})
    found, unknown = memory.known([("p", "a"), ("p", "b"), ("p", "c")])
    assert sorted(found) == [("p", "a"), ("p", "c")]
    assert unknown == [("p", "b")]


def test_forget_drops_the_state_and_every_document() -> None:
    memory = RunnerMemory(CodecOptions[Document]())
    memory.remember(STATE, {("p", "a"): {"_id": "a"}}, {})
    memory.forget()
    assert memory.state is None
    assert memory.known([("p", "a")]) == ({}, [("p", "a")])
