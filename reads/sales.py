"""The admin sales dashboard: totals, recent daily buckets and top-selling products."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from reads.documents import SALES_TOTALS_ID

MAX_DAYS = 366
MAX_TOP_PRODUCTS = 100


class DashboardArgumentError(ValueError):
    """A dashboard argument out of its range."""


async def dashboard(
    totals_coll: AsyncCollection[Any],
    daily_coll: AsyncCollection[Any],
    products_coll: AsyncCollection[Any],
    *,
    days: int,
    limit: int,
) -> dict[str, Any]:
    """The dashboard, net of cancelled orders, as a plain document.

    `daily` holds the newest `days` day buckets (days on which orders were placed),
    newest first; `top_products` the `limit` products with the most units sold, ties
    broken by revenue, then product id; products whose every order was cancelled are
    left out. Before the first order everything is zero and `updated_at` is None.
    DashboardArgumentError for `days` outside 1..366 or `limit` outside 1..100.
    """
    check_dashboard_arguments(days, limit)
    totals: dict[str, Any] = await totals_coll.find_one({"_id": SALES_TOTALS_ID}) or {}
    daily: list[dict[str, Any]] = (
        await daily_coll.find({}).sort("_id", DESCENDING).limit(days).to_list()
    )
    top_products: list[dict[str, Any]] = (
        await products_coll.find({"units_sold": {"$gt": 0}})
        .sort([("units_sold", DESCENDING), ("revenue_cents", DESCENDING), ("_id", 1)])
        .limit(limit)
        .to_list()
    )
    return assemble_dashboard(totals, daily, top_products)


def check_dashboard_arguments(days: int, limit: int) -> None:
    """DashboardArgumentError for `days` outside 1..366 or `limit` outside 1..100."""
    _check_range("days", days, MAX_DAYS)
    _check_range("limit", limit, MAX_TOP_PRODUCTS)


def assemble_dashboard(
    totals: Mapping[str, Any], daily: list[dict[str, Any]], top_products: list[dict[str, Any]]
) -> dict[str, Any]:
    """The dashboard document from the totals, the chosen day buckets and best sellers."""
    revenue = int(totals.get("revenue_cents", 0))
    orders = int(totals.get("order_count", 0))
    return {
        "revenue_cents": revenue,
        "order_count": orders,
        "cancelled_count": int(totals.get("cancelled_count", 0)),
        "average_order_cents": revenue // orders if orders > 0 else 0,
        "updated_at": totals.get("updated_at"),
        "daily": daily,
        "top_products": top_products,
    }


def _check_range(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise DashboardArgumentError(f"{name} must be between 1 and {maximum}, got {value!r}")
