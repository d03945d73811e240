"""The projectors as they were before they became folds: MongoDB update operators per
event (`$set`, `$inc`, `$max`, update pipelines, upserts), kept as the oracle the folds
are checked against (tests/unit/test_fold_equivalence.py). Same behaviour as
workers/projectors at 5e02ba4; only `UpdateOne` became the plain `Update` below, which
`evaluate` applies in memory and `as_pymongo` turns back into the driver's request, and
they read the event's payload as the dict the log row held (`_data`), as they always did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from reads.documents import (
    CUSTOMERS,
    ORDERS,
    PRODUCTS,
    SALES_DAILY,
    SALES_PRODUCTS,
    SALES_TOTALS,
    SALES_TOTALS_ID,
    event_time,
    sales_day,
)
from workers.projection import StoredEvent, UndecodableEvent, UnknownEvent
from writes.events import (
    CustomerRegistered,
    OrderCancelled,
    OrderPlaced,
    OrderShipped,
    ProductCreated,
    ProductPriceChanged,
    ProductRestocked,
)

Update_ = dict[str, Any] | list[dict[str, Any]]


@dataclass(frozen=True)
class Update:
    collection: str
    doc_id: str
    update: Update_
    upsert: bool = False

    def as_pymongo(self) -> UpdateOne:
        return UpdateOne({"_id": self.doc_id}, self.update, upsert=self.upsert)


def _data(event: StoredEvent) -> dict[str, Any]:
    if isinstance(event.event, UnknownEvent | UndecodableEvent):
        return {}
    return dataclasses.asdict(event.event)


def orders(event: StoredEvent) -> list[Update]:
    data = _data(event)
    if event.type == OrderPlaced.__name__:
        placed_at = event_time(data["placed_at"])
        customer = data["customer"]
        document: dict[str, Any] = {
            "customer": {"id": customer["id"], "name": customer["name"],
                         "email": customer["email"]},
            "status": "PLACED",
            "lines": [
                {key: line[key] for key in ("product_id", "sku", "name", "unit_price_cents",
                                            "quantity", "line_total_cents")}
                for line in data["lines"]
            ],
            "item_count": data["item_count"],
            "total_cents": data["total_cents"],
            "placed_at": placed_at,
            "updated_at": placed_at,
            "version": event.stream_version,
            "position": event.position,
        }  # fmt: skip
        return [Update(ORDERS, data["order_id"], {"$set": document}, upsert=True)]
    moves = {OrderCancelled.__name__: ("CANCELLED", "cancelled_at"),
             OrderShipped.__name__: ("SHIPPED", "shipped_at")}  # fmt: skip
    if event.type in moves:
        status, at = moves[event.type]
        change = {"status": status, "updated_at": event_time(data[at]),
                  "version": event.stream_version, "position": event.position}  # fmt: skip
        return [Update(ORDERS, data["order_id"], {"$set": change})]
    return []


_IN_STOCK = {"$set": {"in_stock": {"$gt": ["$stock", 0]}}}


def products(event: StoredEvent) -> list[Update]:
    data = _data(event)
    if event.type == ProductCreated.__name__:
        document = {
            "sku": data["sku"], "name": data["name"], "description": data["description"],
            "price_cents": data["price_cents"], "stock": data["stock"],
            "in_stock": data["stock"] > 0, "units_sold": 0, "version": event.stream_version,
            "updated_at": event_time(data["created_at"]), "position": event.position,
        }  # fmt: skip
        return [Update(PRODUCTS, data["product_id"], {"$set": document}, upsert=True)]
    if event.type == ProductPriceChanged.__name__:
        change = {"price_cents": data["price_cents"], "version": event.stream_version,
                  "updated_at": event_time(data["changed_at"]), "position": event.position}  # fmt: skip
        return [Update(PRODUCTS, data["product_id"], {"$set": change})]
    if event.type == ProductRestocked.__name__:
        at = event_time(data["restocked_at"])
        extra = {"version": event.stream_version}
        return [_stock(event, data["product_id"], data["quantity"], 0, at, extra)]
    if event.type == OrderPlaced.__name__:
        at = event_time(data["placed_at"])
        return [_stock(event, line["product_id"], -line["quantity"], line["quantity"], at)
                for line in data["lines"]]  # fmt: skip
    if event.type == OrderCancelled.__name__:
        at = event_time(data["cancelled_at"])
        return [_stock(event, line["product_id"], line["quantity"], -line["quantity"], at)
                for line in data["lines"]]  # fmt: skip
    return []


def _stock(
    event: StoredEvent, product_id: str, stock: int, sold: int, at: datetime,
    extra: dict[str, Any] | None = None,
) -> Update:  # fmt: skip
    values = {"updated_at": at, "position": event.position, **(extra or {})}
    first = {
        "stock": {"$add": ["$stock", stock]},
        "units_sold": {"$add": ["$units_sold", sold]},
        **{field: {"$literal": value} for field, value in values.items()},
    }
    return Update(PRODUCTS, product_id, [{"$set": first}, _IN_STOCK])


def customers(event: StoredEvent) -> list[Update]:
    data = _data(event)
    if event.type == CustomerRegistered.__name__:
        document = {"email": data["email"], "name": data["name"], "role": data["role"],
                    "order_count": 0, "lifetime_value_cents": 0, "position": event.position}  # fmt: skip
        return [Update(CUSTOMERS, data["customer_id"], {"$set": document}, upsert=True)]
    if event.type == OrderPlaced.__name__:
        return [_count(event, data["customer"]["id"], 1, data["total_cents"])]
    if event.type == OrderCancelled.__name__:
        return [_count(event, data["customer_id"], -1, -data["total_cents"])]
    return []


def _count(event: StoredEvent, customer_id: str, orders: int, cents: int) -> Update:
    update = {"$inc": {"order_count": orders, "lifetime_value_cents": cents},
              "$set": {"position": event.position}}  # fmt: skip
    return Update(CUSTOMERS, customer_id, update)


def sales(event: StoredEvent) -> list[Update]:
    data = _data(event)
    placed = event.type == OrderPlaced.__name__
    if not placed and event.type != OrderCancelled.__name__:
        return []
    sign = 1 if placed else -1
    total = sign * data["total_cents"]
    at = event_time(data["placed_at"] if placed else data["cancelled_at"])
    totals = {
        "$inc": {"revenue_cents": total, "order_count": sign, "cancelled_count": 0 if placed else 1},
        "$max": {"updated_at": at},
        "$set": {"position": event.position},
    }  # fmt: skip
    day = sales_day(event_time(data["placed_at"]))
    daily = {"$inc": {"revenue_cents": total, "order_count": sign},
             "$set": {"date": day, "position": event.position}}  # fmt: skip
    updates = [Update(SALES_TOTALS, SALES_TOTALS_ID, totals, upsert=True),
               Update(SALES_DAILY, day, daily, upsert=True)]  # fmt: skip
    for line in data["lines"]:
        product_id = line["product_id"]
        counts = {"units_sold": sign * line["quantity"],
                  "revenue_cents": sign * line["line_total_cents"]}  # fmt: skip
        if placed:
            named = {"product_id": product_id, "name": line["name"], "position": event.position}
            updates.append(
                Update(SALES_PRODUCTS, product_id, {"$inc": counts, "$set": named}, upsert=True)
            )
        else:
            update = {"$inc": counts, "$set": {"position": event.position}}
            updates.append(Update(SALES_PRODUCTS, product_id, update))
    return updates


REFERENCE = {"orders": orders, "products": products, "customers": customers, "sales": sales}

Documents = dict[tuple[str, str], dict[str, Any]]


def evaluate(updates: list[Update], documents: Documents) -> None:
    """Apply `updates` in order to `documents`, as MongoDB applies these forms."""
    for request in updates:
        key = (request.collection, request.doc_id)
        current = documents.get(key)
        if current is None:
            if not request.upsert:
                continue  # an update matches nothing
            current = {"_id": request.doc_id}
        else:
            current = dict(current)
        if isinstance(request.update, list):
            for stage in request.update:
                current = _stage(stage, current)
        else:
            current = _operators(request.update, current)
        documents[key] = current


def _operators(update: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    for operator, fields in update.items():
        for field, value in fields.items():
            if operator == "$set":
                doc[field] = value
            elif operator == "$inc":
                doc[field] = doc.get(field, 0) + value
            elif operator == "$max":
                if field not in doc or value > doc[field]:
                    doc[field] = value
            else:
                raise NotImplementedError(operator)
    return doc


def _stage(stage: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    [(operator, fields)] = stage.items()
    if operator != "$set":
        raise NotImplementedError(operator)
    # Every expression of a stage reads the document as it was before the stage.
    return {**doc, **{field: _expression(expr, doc) for field, expr in fields.items()}}


def _expression(expr: Any, doc: dict[str, Any]) -> Any:
    if isinstance(expr, str) and expr.startswith("$"):
        return doc.get(expr[1:])
    if isinstance(expr, dict) and len(expr) == 1:
        [(operator, argument)] = expr.items()
        if operator == "$literal":
            return argument
        if operator == "$add":
            values = [_expression(a, doc) for a in argument]
            return None if None in values else sum(values)
        if operator == "$gt":
            left, right = (_expression(a, doc) for a in argument)
            return left > right
        raise NotImplementedError(operator)
    return expr
