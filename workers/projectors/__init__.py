"""The projectors, one module each, by projection name.

Projectors are pure: they read only the event payload and import only
`writes.events` (the event classes they match on) and `reads.documents` (the document
types they build).
"""

from __future__ import annotations

from workers.projection import Projector
from workers.projectors import customers, orders, products, sales

PROJECTORS: dict[str, Projector] = {
    projector.name: projector
    for projector in (orders.PROJECTOR, products.PROJECTOR, customers.PROJECTOR, sales.PROJECTOR)
}

__all__ = ["PROJECTORS"]
