"""Placing, cancelling and shipping orders."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import Table, any_, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from writes import rules
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
from writes.models import Customer, IdempotencyKey, Order, OrderLine, Product
from writes.unit_of_work import UnitOfWork
from writes.views import (
    Committed,
    OrderCustomerView,
    OrderLineView,
    OrderView,
    order_line_view,
    order_view,
)

# Placing an order is the hot command: its statements are Core, built once, so a call
# pays neither the ORM's unit of work nor building SQL expressions again (py-spy: the
# ORM flush and expression building were a third of the command's CPU). Stock is taken
# and lines inserted in one statement each, not one per line.
_CUSTOMER = select(Customer.id, Customer.name, Customer.email).where(Customer.id == bindparam("id"))
_LOCK_PRODUCTS = (
    select(Product.id, Product.sku, Product.name, Product.price_cents, Product.stock)
    .where(Product.id == any_(bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))))
    .order_by(Product.id)
    .with_for_update()
)
_INSERT_ORDER = insert(cast("Table", Order.__table__))
_INSERT_LINES = text(
    """
    INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price_cents, quantity)
    SELECT :order_id, line.*
    FROM unnest(
        CAST(:line_nos AS integer[]), CAST(:product_ids AS uuid[]), CAST(:skus AS text[]),
        CAST(:names AS text[]), CAST(:prices AS bigint[]), CAST(:quantities AS integer[])
    ) AS line
    """
)
_TAKE_STOCK = text(
    """
    UPDATE products
    SET stock = products.stock - taken.quantity,
        units_sold = products.units_sold + taken.quantity,
        updated_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:quantities AS integer[])) AS taken(id, quantity)
    WHERE products.id = taken.id
    """
)


async def place_order(cmd: PlaceOrder, uow: UnitOfWork) -> Committed[OrderView]:
    """Reserve stock for every line (all or nothing) and record the order.

    With an idempotencyKey the first successful result is stored in the same
    transaction and returned again for every retry, concurrent or later.
    """
    actor = uow.actor
    key = rules.idempotency_key(cmd.idempotency_key)
    quantities = rules.order_lines(cmd.lines)
    # Before the key: a token naming no customer must not reach the key's foreign key.
    customer = (await uow.session.execute(_CUSTOMER, {"id": actor.customer_id})).one_or_none()
    if customer is None:
        raise Unauthenticated
    if key is not None:
        replay = await _claim_key(uow, actor, key, _request_hash(cmd))
        if replay is not None:
            return replay

    # Locks in id order, so two orders sharing products cannot deadlock.
    rows = await uow.session.execute(_LOCK_PRODUCTS, {"ids": list(quantities)})
    products = {row.id: row for row in rows}
    rules.enough_stock(cmd.lines, {product.id: product.stock for product in products.values()})

    now = uow.now()
    lines = tuple(
        OrderLineView(product.id, product.sku, product.name, product.price_cents, quantity)
        for product, quantity in ((products[pid], q) for pid, q in quantities.items())
    )
    view = OrderView(
        id=uuid.uuid4(),
        status="PLACED",
        customer=OrderCustomerView(customer.id, customer.name, customer.email),
        lines=lines,
        item_count=sum(line.quantity for line in lines),
        total_cents=sum(line.line_total_cents for line in lines),
        placed_at=now,
        updated_at=now,
        version=1,
    )
    await uow.session.execute(
        _TAKE_STOCK, {"ids": list(quantities), "quantities": list(quantities.values()), "now": now}
    )
    await uow.session.execute(
        _INSERT_ORDER,
        {
            "id": view.id,
            "customer_id": customer.id,
            "status": view.status,
            "item_count": view.item_count,
            "total_cents": view.total_cents,
            "placed_at": now,
            "updated_at": now,
            "version": view.version,
        },
    )
    await uow.session.execute(
        _INSERT_LINES,
        {
            "order_id": view.id,
            "line_nos": list(range(1, len(lines) + 1)),
            "product_ids": [line.product_id for line in lines],
            "skus": [line.sku for line in lines],
            "names": [line.name for line in lines],
            "prices": [line.unit_price_cents for line in lines],
            "quantities": [line.quantity for line in lines],
        },
    )
    uow.record(_placed_event(view), stream_id=view.id, stream_version=view.version)
    if key is None:
        return Committed(view, await uow.commit())
    # The position is only known after the append: store it in the same commit.
    key_row = await uow.session.get(IdempotencyKey, (actor.customer_id, key))
    assert key_row is not None
    key_row.order_id = view.id
    key_row.result = stored_order(view)
    position = await uow.commit_with(lambda p: setattr(key_row, "position", p))
    return Committed(view, position)


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
    claimed = await uow.session.scalar(
        pg_insert(IdempotencyKey)
        .values(
            customer_id=actor.customer_id,
            key=key,
            request_hash=request_hash,
            created_at=uow.now(),
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    if claimed is not None:
        return None
    stored = await uow.session.get(IdempotencyKey, (actor.customer_id, key))
    # A visible key row was committed together with its result (see place_order).
    assert stored is not None
    assert stored.result is not None
    assert stored.position is not None
    if stored.request_hash != request_hash:
        raise ValidationFailed("idempotency_key", "this key was already used for a different order")
    return Committed(replayed_order(stored.result), stored.position)


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
