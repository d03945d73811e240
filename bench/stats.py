"""Summaries the report prints: percentiles of one round, spreads over rounds."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 < fraction <= 1) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of an empty sample")
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(len(ordered), rank) - 1]


@dataclass(frozen=True)
class Spread:
    """The median of several rounds, with the lowest and highest round."""

    median: float
    low: float
    high: float

    def show(self, digits: int = 1) -> str:
        return f"{self.median:,.{digits}f} ({self.low:,.{digits}f}-{self.high:,.{digits}f})"


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("spread of no rounds")
    return Spread(statistics.median(values), min(values), max(values))
