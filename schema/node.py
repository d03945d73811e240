"""The Node interface: every object clients cache has a globally unique UUID id."""

from __future__ import annotations

import strawberry


@strawberry.interface(description="An object with a UUID id, unique across all types.")
class Node:
    id: strawberry.ID
