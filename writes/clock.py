"""Timestamps for rows and events."""

from __future__ import annotations

from datetime import UTC, datetime


def now_ms() -> datetime:
    """The current UTC time cut to milliseconds.

    MongoDB stores milliseconds; cutting here keeps a projected document and the
    write-store row it came from exactly equal.
    """
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(moment: datetime) -> str:
    """The ISO-8601 form events carry."""
    return moment.isoformat(timespec="milliseconds")
