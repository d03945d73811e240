"""Enums shared by several types."""

from __future__ import annotations

from enum import Enum

import strawberry

from writes.commands import Role

# The one Role (writes/commands.py) is exposed to GraphQL as it is: its members are the
# contract's values, so no second definition can drift from the one tokens carry.
# strawberry.enum marks the class itself and returns it, so `Role` stays the domain's.
strawberry.enum(Role, name="Role")

__all__ = ["OrderStatus", "Role"]


@strawberry.enum
class OrderStatus(Enum):
    PLACED = "PLACED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"
