"""Runs a read for a query resolver: consistency bookkeeping and error codes, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from reads.consistency import PositionNotCommitted
from reads.paging import BadCursor, PageSizeError
from reads.products import BadSearch
from reads.queries import Served
from reads.read_model import ReadModelUnavailable
from reads.sales import DashboardArgumentError
from schema.context import Info
from schema.errors import ApiError
from writes.authorization import may_access
from writes.commands import Actor

T = TypeVar("T")


@contextmanager
def coded_read_errors() -> Iterator[None]:
    """The read side's refusals and outages as the API's coded errors."""
    try:
        yield
    except (
        PageSizeError,
        BadCursor,
        DashboardArgumentError,
        BadSearch,
        PositionNotCommitted,
    ) as exc:
        raise ApiError("BAD_USER_INPUT", str(exc)) from None
    except ReadModelUnavailable:
        raise ApiError(
            "READ_MODEL_UNAVAILABLE",
            "the read model (MongoDB) cannot be reached right now; try again shortly",
        ) from None


async def read(info: Info, reader: Callable[[int | None], Awaitable[tuple[T, Served | None]]]) -> T:
    """Call `reader` with the client's consistency position and record where it was served."""
    ctx = info.context
    with coded_read_errors():
        value, served = await reader(ctx.read_position())
    ctx.served_from.record(served)
    return value


def signed_in(info: Info) -> Actor:
    actor = info.context.actor()
    if actor is None:
        raise ApiError("UNAUTHENTICATED", "sign in first: this query needs a bearer token")
    return actor


def admin(info: Info) -> Actor:
    actor = signed_in(info)
    if not actor.is_admin:
        raise ApiError("FORBIDDEN", "only an admin may read this")
    return actor


def may_read_order(actor: Actor | None, doc: Mapping[str, Any]) -> bool:
    return may_access(actor, doc["customer"]["id"])


def may_read_customer(actor: Actor | None, doc: Mapping[str, Any]) -> bool:
    return may_access(actor, doc["_id"])


async def read_dashboard(info: Info, days: int, limit: int) -> dict[str, Any]:
    admin(info)
    queries = info.context.queries
    return await read(info, lambda at: queries.dashboard(days=days, limit=limit, at=at))
