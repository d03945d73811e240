"""The rebuild's filter of flushed keys: never a false negative, few false positives.

A false negative would make a rebuild insert a document the new generation holds already
(a duplicate key error) or fold an event over nothing; a false positive costs one read.
"""

from __future__ import annotations

from workers.projection import DocKey
from workers.working_set import WrittenKeys


def keys(prefix: str, count: int) -> list[DocKey]:
    return [("orders", f"{prefix}-{i:08d}") for i in range(count)]


def test_every_written_key_is_found() -> None:
    written = WrittenKeys()
    flushed = keys("written", 50_000)
    written.update(flushed)

    assert all(key in written for key in flushed)


def test_keys_never_written_are_mostly_told_apart() -> None:
    written = WrittenKeys()
    written.update(keys("written", 50_000))

    others = keys("other", 20_000)
    false_positives = sum(key in written for key in others)

    assert false_positives < len(others) * 0.01


def test_an_empty_filter_holds_nothing() -> None:
    assert ("orders", "anything") not in WrittenKeys()
