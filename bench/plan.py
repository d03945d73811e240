"""How big and how long: the full run's sizes, or the smoke run's tiny ones."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    smoke: bool
    rounds: int
    # Seconds each round measures for, after its warm-up.
    round_s: float
    warmup_s: float
    # Full sizes are multiplied by this (a quicker look at one row while working on it).
    scale: float = 1.0

    @classmethod
    def full(cls, rounds: int = 5, scale: float = 1.0) -> Plan:
        return cls(smoke=False, rounds=rounds, round_s=8.0, warmup_s=2.0, scale=scale)

    @classmethod
    def smoke_plan(cls) -> Plan:
        return cls(smoke=True, rounds=2, round_s=0.5, warmup_s=0.2)

    def size(self, full: int, smoke: int) -> int:
        return smoke if self.smoke else max(smoke, int(full * self.scale))
