"""The limits a document must keep and the cost budgets per role (app/settings.py sets both)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueryLimits:
    """Defaults equal the settings' defaults (a unit test holds them together)."""

    max_characters: int = 15_000
    max_tokens: int = 2000
    max_depth: int = 10
    max_aliases: int = 15
    max_directives: int = 50
    max_fields: int = 1000
    max_repeated_fields: int = 2000


@dataclass(frozen=True)
class Budgets:
    """The most an operation may cost (schema/limits/costs.py), by the caller's role."""

    anonymous: int = 1500
    customer: int = 6000
    admin: int = 12_000

    def for_role(self, role: str | None) -> int:
        if role == "ADMIN":
            return self.admin
        if role == "CUSTOMER":
            return self.customer
        return self.anonymous


@dataclass
class SharedBudget:
    """One budget that the operations of one HTTP request draw on in turn (a batch):
    each is priced against what the ones before it left (decision 0042)."""

    spent: int = 0
