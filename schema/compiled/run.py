"""Runs a compiled plan for one request: the resolvers' reads and checks, none of their
machinery.

Each root field a plan may serve has a reader here that does what its resolver in
schema/queries.py does (the same ReadQueries call with the client's consistency
position, the same authorization, `served_from` recorded), asking MongoDB for just the
paths the plan reads. Where the resolver would raise (no caller, a bad token, a refused
token, an outage), the reader abandons and the standard path raises it instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from graphql.execution.values import VariableValues, get_argument_values

from reads.documents import OrderDocument, ProductDocument
from schema.compiled.plan import Abandon, CompiledOperation, RootPlan, Specialized
from schema.context import Context
from schema.queries import DEFAULT_PAGE
from schema.reading import may_read_order

Reader = Callable[
    [Context, Mapping[str, Any], tuple[str, ...]], Awaitable[Mapping[str, Any] | None]
]


async def _order(
    context: Context, arguments: Mapping[str, Any], fields: tuple[str, ...]
) -> OrderDocument | None:
    actor = context.actor()
    if actor is None:
        raise Abandon  # the resolver's UNAUTHENTICATED error
    document, served = await context.queries.order(
        arguments["id"], context.read_position(), fields=fields
    )
    context.served_from.record(served)
    # Another customer's order reads as an unknown one: no existence oracle.
    return document if document is not None and may_read_order(actor, document) else None


async def _product(
    context: Context, arguments: Mapping[str, Any], fields: tuple[str, ...]
) -> ProductDocument | None:
    document, served = await context.queries.product(
        arguments["id"], context.read_position(), fields=fields
    )
    context.served_from.record(served)
    return document


async def _my_orders(
    context: Context, arguments: Mapping[str, Any], fields: tuple[str, ...]
) -> Mapping[str, Any]:
    actor = context.actor()
    if actor is None:
        raise Abandon  # the resolver's UNAUTHENTICATED error
    if arguments.get("last") is not None or arguments.get("before") is not None:
        raise Abandon  # paging backward: the resolver's own rules on first and last
    first = arguments.get("first")
    status = arguments.get("status")
    page, served = await context.queries.customer_orders(
        str(actor.customer_id),
        first=DEFAULT_PAGE if first is None else first,
        after=arguments.get("after"),
        status=None if status is None else status.value,
        at=context.read_position(),
    )
    context.served_from.record(served)
    return {
        "edges": [
            {"cursor": cursor, "node": node}
            for node, cursor in zip(page.items, page.cursors, strict=True)
        ],
        "page_info": {
            "has_next": page.has_next,
            "end_cursor": page.end_cursor,
            "has_previous": page.has_previous,
            "start_cursor": page.start_cursor,
        },
    }


# Root field -> its reader, and the document paths the reader itself needs.
READERS: dict[str, tuple[Reader, tuple[str, ...]]] = {
    "order": (_order, ("customer.id",)),
    "product": (_product, ()),
    "myOrders": (_my_orders, ()),
}
ROOT_FIELDS = frozenset(READERS)


async def run_plan(
    plan: Specialized, variables: VariableValues, context: Context
) -> dict[str, Any]:
    """The response's `data`; Abandon when the standard path must answer instead."""
    data: dict[str, Any] = {}
    try:
        for root in plan.roots:
            data[root.response_key] = await _root(root, variables, context)
    except Abandon:
        raise
    except Exception as exc:  # whatever it was, the standard path reports it its own way
        raise Abandon from exc
    return data


async def _root(root: RootPlan, variables: VariableValues, context: Context) -> Any:
    if root.result is None:
        return "Query"
    reader, required = READERS[root.field_name]
    arguments = get_argument_values(root.definition, root.node, variables)
    document = await reader(context, arguments, root.projection(required))
    if document is None:
        if root.non_null:
            raise Abandon
        return None
    return root.result.emit(document, "", 0)


def budget_allows(
    operation: CompiledOperation, context: Context, budget_for: Callable[[str | None], int]
) -> bool:
    """Whether the caller's role may spend the operation's cost (DocumentLimits' check)."""
    actor = context.actor()
    role = None if actor is None else str(actor.role)
    return operation.cost <= budget_for(role)
