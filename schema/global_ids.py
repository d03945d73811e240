"""Ids for the objects that have no UUID of their own: order lines, dashboard rows.

Relay's store keys every object with an `id` by that id alone, and Apollo's by type and
id, so these ids are UUIDs like the Node ids, unique across all types: a name-based
UUID (version 5) of the type and the object's natural key. The same key gives the same
id on every read, from the projection or the write-store fallback alike, since both
build the same documents. They name the object, they do not fetch it: `node(id:)`
answers null for them (decision 0049).
"""

from __future__ import annotations

import uuid

import strawberry

# Fixed for good: changing it would change every derived id clients have cached.
NAMESPACE = uuid.UUID("5b0f7f8e-3d8a-4f4e-9a57-6c1e2b9d4a10")


def derived_id(type_name: str, *key: str | int) -> strawberry.ID:
    """The global id of the `type_name` object with natural key `key`."""
    name = "/".join([type_name, *(str(part) for part in key)])
    return strawberry.ID(str(uuid.uuid5(NAMESPACE, name)))


def order_line_id(order_id: str, line_no: int) -> strawberry.ID:
    """A line's id: its order and its 1-based place there (lines never change once placed,
    and two lines of one order may name the same product)."""
    return derived_id("OrderLine", str(uuid.UUID(order_id)), line_no)


SALES_DASHBOARD_ID = derived_id("SalesDashboard")
