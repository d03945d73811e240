"""A listing's keyset window over table columns, for the write-store fallback."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, exists, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from reads.paging import Ordering, PageRequest


class SqlWindow:
    """A listing's keyset over table columns: the SQL twin of reads.paging's Mongo filters.

    Every key of the listings served here sorts one way, so row-value comparisons
    (`(a, b) < (x, y)`) express "after" and walk a matching index in either direction.
    """

    def __init__(
        self,
        ordering: Ordering,
        columns: tuple[Any, ...],
        bind: Callable[[tuple[Any, ...]], tuple[Any, ...]],
    ) -> None:
        directions = {f.descending for f in ordering.fields}
        assert len(directions) == 1, "row-value keysets need every key sorted one way"
        self._descending = directions.pop()
        self.ordering = ordering
        self._columns = columns
        self._bind = bind

    def past(
        self, values: tuple[Any, ...], *, later: bool, inclusive: bool = False
    ) -> ColumnElement[bool]:
        """Rows after (`later`) or before the sort-key `values` in the listing's order."""
        row, bound = tuple_(*self._columns), tuple_(*self._bind(values))
        if later != self._descending:
            return row >= bound if inclusive else row > bound
        return row <= bound if inclusive else row < bound

    async def ids(
        self,
        session: AsyncSession,
        id_column: Any,
        where: list[ColumnElement[bool]],
        request: PageRequest,
    ) -> tuple[list[uuid.UUID], bool, bool]:
        """The ids of the requested page in the listing's order, has_next, has_previous."""
        window = list(where)
        if request.after is not None:
            window.append(self.past(request.after, later=True))
        if request.before is not None:
            window.append(self.past(request.before, later=False))
        descending = self._descending != request.backward
        order_by = [column.desc() if descending else column.asc() for column in self._columns]
        found = list(
            await session.scalars(
                select(id_column).where(*window).order_by(*order_by).limit(request.size + 1)
            )
        )
        more = len(found) > request.size
        page_ids = found[: request.size]
        if request.backward:
            page_ids.reverse()
        beyond = False
        if request.beyond is not None:
            past = self.past(request.beyond, later=request.backward, inclusive=True)
            beyond = bool(await session.scalar(select(exists().where(*where, past))))
        if request.backward:
            return page_ids, beyond, more
        return page_ids, more, beyond
