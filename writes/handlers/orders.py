"""Placing, cancelling and shipping orders."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime

import orjson
from sqlalchemy import select

from writes import rules, sql
from writes.authorization import may_access
from writes.clock import iso
from writes.commands import Actor, CancelOrder, PlaceOrder, ShipOrder
from writes.errors import (
    InvalidTransition,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from writes.events import (
    OrderCancelled,
    OrderCustomerData,
    OrderLineData,
    OrderPlaced,
    OrderShipped,
    RestockedLine,
)
from writes.idempotency_record import replayed_order, stored_order
from writes.models import Customer, Order, OrderLine, Product
from writes.unit_of_work import UnitOfWork
from writes.views import (
    Committed,
    OrderCustomerView,
    OrderLineView,
    OrderView,
    order_line_view,
    order_view,
)

# Placing an order is the hot command: its statements go as plain SQL through the
# transaction's own asyncpg connection (writes/sql.py, docs/decisions/0077), which pays
# neither SQLAlchemy's execution layer nor its result processing. Stock is taken and
# lines inserted in one statement each, not one per line.


async def place_order(cmd: PlaceOrder, uow: UnitOfWork) -> Committed[OrderView]:
    """Reserve stock for every line (all or nothing) and record the order.

    With an idempotencyKey the first successful result is stored in the same
    transaction and returned again for every retry, concurrent or later.
    """
    actor = uow.actor
    key = rules.idempotency_key(cmd.idempotency_key)
    quantities = rules.order_lines(cmd.lines)
    driver = await uow.driver()
    # Before the key: a token naming no customer must not reach the key's foreign key.
    customer = await driver.fetchrow(sql.SELECT_CUSTOMER, actor.customer_id)
    if customer is None:
        raise Unauthenticated
    if key is not None:
        replay = await _claim_key(uow, actor, key, _request_hash(cmd))
        if replay is not None:
            return replay

    product_ids = list(quantities)
    products = {row[0]: row for row in await driver.fetch(sql.LOCK_PRODUCTS, product_ids)}
    rules.enough_stock(cmd.lines, {pid: row[4] for pid, row in products.items()})

    now = uow.now()
    # (id, sku, name, price_cents, stock) rows, in the order's line order.
    lines = tuple(
        OrderLineView(product[0], product[1], product[2], product[3], quantity)
        for product, quantity in ((products[pid], q) for pid, q in quantities.items())
    )
    view = OrderView(
        id=uuid.uuid4(),
        status="PLACED",
        customer=OrderCustomerView(customer[0], customer[1], customer[2]),
        lines=lines,
        item_count=sum(line.quantity for line in lines),
        total_cents=sum(line.line_total_cents for line in lines),
        placed_at=now,
        updated_at=now,
        version=1,
    )
    await driver.execute(sql.TAKE_STOCK, now, product_ids, list(quantities.values()))
    await driver.execute(
        sql.INSERT_ORDER, view.id, actor.customer_id, view.status, view.item_count,
        view.total_cents, now, now, view.version,
    )  # fmt: skip
    await driver.execute(
        sql.INSERT_LINES, view.id, list(range(1, len(lines) + 1)),
        [line.product_id for line in lines], [line.sku for line in lines],
        [line.name for line in lines], [line.unit_price_cents for line in lines],
        [line.quantity for line in lines],
    )  # fmt: skip
    uow.record(_placed_event(view), stream_id=view.id, stream_version=view.version)
    if key is None:
        return Committed(view, await uow.commit())

    # The position is only known after the append: store it in the same commit.
    async def store_result(position: int) -> None:
        result = orjson.dumps(stored_order(view)).decode()
        await driver.execute(sql.STORE_RESULT, actor.customer_id, key, view.id, result, position)

    return Committed(view, await uow.commit_with(store_result))


async def cancel_order(cmd: CancelOrder, uow: UnitOfWork) -> Committed[OrderView]:
    """Cancel a placed order (its owner or an admin) and put its units back in stock."""
    order = await _locked_order(uow, cmd.order_id)
    if not may_access(uow.actor, order.customer_id):
        # The same answer as for an unknown order, so ids cannot be probed for existence.
        raise NotFound("order", cmd.order_id)
    _transition(order, "CANCELLED", uow.now())
    lines = await _lines(uow, order.id)
    products = await uow.session.scalars(
        select(Product)
        .where(Product.id.in_([line.product_id for line in lines]))
        .order_by(Product.id)
        .with_for_update()
    )
    returned = {line.product_id: line.quantity for line in lines}
    for product in products:
        product.stock += returned[product.id]
        product.units_sold -= returned[product.id]
        product.updated_at = order.updated_at
    uow.record(
        OrderCancelled(
            order_id=str(order.id),
            customer_id=str(order.customer_id),
            lines=tuple(
                RestockedLine(str(line.product_id), line.quantity, line.line_total_cents)
                for line in lines
            ),
            total_cents=order.total_cents,
            placed_at=iso(order.placed_at),
            cancelled_at=iso(order.updated_at),
        ),
        stream_id=order.id,
        stream_version=order.version,
    )
    view = await _committed_view(uow, order, lines)
    return Committed(view, await uow.commit())


async def ship_order(cmd: ShipOrder, uow: UnitOfWork) -> Committed[OrderView]:
    """Mark a placed order shipped (admins only)."""
    order = await _locked_order(uow, cmd.order_id)
    _transition(order, "SHIPPED", uow.now())
    uow.record(
        OrderShipped(
            order_id=str(order.id),
            customer_id=str(order.customer_id),
            shipped_at=iso(order.updated_at),
        ),
        stream_id=order.id,
        stream_version=order.version,
    )
    view = await _committed_view(uow, order, await _lines(uow, order.id))
    return Committed(view, await uow.commit())


async def _committed_view(uow: UnitOfWork, order: Order, lines: list[OrderLineView]) -> OrderView:
    """The committed state of an order with its customer and lines."""
    customer = await uow.session.get(Customer, order.customer_id)
    assert customer is not None  # orders.customer_id is a foreign key
    return order_view(order, OrderCustomerView(customer.id, customer.name, customer.email), lines)


async def _claim_key(
    uow: UnitOfWork, actor: Actor, key: str, request_hash: str
) -> Committed[OrderView] | None:
    """Claim the key for this request, or return the result stored by whoever claimed it.

    A concurrent claim of the same key blocks on the unique index until the first
    transaction ends, so a retry never races the original.
    """
    driver = await uow.driver()
    claimed = await driver.fetchval(sql.CLAIM_KEY, actor.customer_id, key, request_hash, uow.now())
    if claimed is not None:
        return None
    stored = await driver.fetchrow(sql.STORED_KEY, actor.customer_id, key)
    # A visible key row was committed together with its result (see place_order).
    assert stored is not None
    stored_hash, result, position = stored
    assert result is not None
    assert position is not None
    if stored_hash != request_hash:
        raise ValidationFailed("idempotency_key", "this key was already used for a different order")
    # SQLAlchemy's asyncpg adapter hands JSONB over as text; the ORM would decode it.
    record = orjson.loads(result) if isinstance(result, str) else result
    return Committed(replayed_order(record), int(position))


def _request_hash(cmd: PlaceOrder) -> str:
    lines = [[line.product_id.lower(), line.quantity] for line in cmd.lines]
    return hashlib.sha256(json.dumps(lines).encode()).hexdigest()


async def _locked_order(uow: UnitOfWork, raw_id: str) -> Order:
    order_id = rules.entity_id(raw_id, "order")
    order = await uow.session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise NotFound("order", raw_id)
    return order


def _transition(order: Order, to_status: str, now: datetime) -> None:
    if not rules.can_transition(order.status, to_status):
        raise InvalidTransition(order.status, to_status)
    order.status = to_status
    order.version += 1
    order.updated_at = now


async def _lines(uow: UnitOfWork, order_id: uuid.UUID) -> list[OrderLineView]:
    rows = await uow.session.scalars(
        select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no)
    )
    return [order_line_view(row) for row in rows]


def _placed_event(view: OrderView) -> OrderPlaced:
    return OrderPlaced(
        order_id=str(view.id),
        customer=OrderCustomerData(str(view.customer.id), view.customer.name, view.customer.email),
        lines=tuple(
            OrderLineData(
                str(line.product_id),
                line.sku,
                line.name,
                line.unit_price_cents,
                line.quantity,
                line.line_total_cents,
            )
            for line in view.lines
        ),
        item_count=view.item_count,
        total_cents=view.total_cents,
        placed_at=iso(view.placed_at),
    )
