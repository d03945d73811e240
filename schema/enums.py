"""Enums shared by several types."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum
class Role(Enum):
    CUSTOMER = "CUSTOMER"
    ADMIN = "ADMIN"


@strawberry.enum
class OrderStatus(Enum):
    PLACED = "PLACED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"
