"""How long projection batches take, kept beside the checkpoint for the API's /metrics.

A worker is not scraped: it counts its batch durations into histogram buckets in memory
and adds them to the projection's state document once a second (the heartbeat's update,
no extra round trip). The counts only grow, across worker restarts and hand-overs, so
they read as a Prometheus histogram; the API exports them at scrape time.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

# Upper bounds (seconds) of the batch-duration buckets; one more bucket holds the rest.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FIELD = "batch_seconds"

Document = dict[str, Any]


@dataclass
class BatchTimings:
    """Batch durations seen since the last flush."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total_s: float = 0.0

    def observe(self, seconds: float) -> None:
        """Count one batch that took `seconds`."""
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total_s += seconds

    def flush(self) -> Document:
        """The `$inc` that adds what was seen to a state document ({} when nothing was);
        the counts start again from zero (a failed write loses at most a second's worth)."""
        if not any(self.counts):
            return {}
        increments: Document = {f"{FIELD}.sum": self.total_s, f"{FIELD}.count": sum(self.counts)}
        increments |= {f"{FIELD}.b{i}": n for i, n in enumerate(self.counts) if n}
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total_s = 0.0
        return increments


@dataclass(frozen=True)
class BatchHistogram:
    """A projection's recorded batch durations: cumulative (upper bound, count) pairs."""

    buckets: list[tuple[float, int]]
    total_s: float
    count: int


def histogram(state: Document) -> BatchHistogram:
    """The histogram a state document holds (all zeros before the first batch)."""
    recorded: Document = state.get(FIELD) or {}
    running = 0
    buckets = []
    for index, bound in enumerate((*BUCKETS, float("inf"))):
        running += int(recorded.get(f"b{index}", 0))
        buckets.append((bound, running))
    return BatchHistogram(buckets, float(recorded.get("sum", 0.0)), int(recorded.get("count", 0)))
