"""What a worker process needs to know, handed in by the entry point (never read at import)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerConfig:
    database_url: str
    mongodb_url: str
    mongodb_database: str
    redis_prefix: str
    batch_size: int = 500
    # How long a dead worker's projections stay claimed before another worker takes them
    # over (workers.supervisor.LEASE_TTL_MS by default; must exceed the 1 s renewal tick).
    lease_ttl_ms: int = 5000
