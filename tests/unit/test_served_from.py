"""`extensions.consistency` from where a request's reads were served (schema/consistency.py
ServedFrom): no services needed."""

from __future__ import annotations

from reads.queries import Served
from schema.consistency import ServedFrom


def served_from(*reads: Served | None) -> ServedFrom:
    recorded = ServedFrom()
    for served in reads:
        recorded.record(served)
    return recorded


def test_nothing_is_reported_without_a_token_or_a_read() -> None:
    assert served_from(Served("projection", 7)).report(None) is None
    assert served_from().report("token") is None
    assert served_from(None).report("token") is None  # the read had no token to honour


def test_projection_reads_report_the_lowest_position_they_saw() -> None:
    reads = served_from(Served("projection", 9), Served("projection", 7, waited=True))
    assert reads.report("t") == {
        "token": "t",
        "servedFrom": "projection",
        "projectionPosition": "7",
    }


def test_one_fallback_makes_the_request_served_from_the_write_store() -> None:
    reads = served_from(Served("projection", 9), Served("write_store", 4), Served("projection", 8))
    # The position is still the projection's: what the projection reads saw.
    assert reads.report("t") == {
        "token": "t",
        "servedFrom": "write_store",
        "projectionPosition": "8",
    }


def test_only_fallbacks_report_the_lowest_position_the_projections_were_at() -> None:
    reads = served_from(Served("write_store", 5), Served("write_store", 3))
    assert reads.report("t") == {
        "token": "t",
        "servedFrom": "write_store",
        "projectionPosition": "3",
    }
