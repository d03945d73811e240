"""The demo shop's plan: deterministic, valid input for the handlers, a history over months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.seed.plan import SIZES, Fate, plan_shop
from writes import rules
from writes.unit_of_work import CommandMetadata, UnitOfWork

NOW = datetime(2026, 3, 14, 15, 9, 26, 535_897, tzinfo=UTC)


def test_the_same_size_plans_the_same_shop_and_only_the_dates_follow_the_day() -> None:
    first, again = plan_shop("small", NOW), plan_shop("small", NOW)
    assert first == again
    later = plan_shop("small", NOW + timedelta(days=40))
    assert [c.email for c in later.customers] == [c.email for c in first.customers]
    assert [(o.key, o.customer, o.lines, o.fate) for o in later.orders] == [
        (o.key, o.customer, o.lines, o.fate) for o in first.orders
    ]
    assert later.orders[0].placed_at - first.orders[0].placed_at == timedelta(days=40)


def test_customers_are_the_same_people_in_every_size() -> None:
    small, medium = plan_shop("small", NOW), plan_shop("medium", NOW)
    emails = [customer.email for customer in small.customers]
    assert [c.email for c in medium.customers[: len(emails)]] == emails
    assert small.products == medium.products


@pytest.mark.parametrize("size", list(SIZES))
def test_every_planned_command_passes_the_write_rules(size: str) -> None:
    plan = plan_shop(size, NOW)
    assert len(plan.orders) == SIZES[size].orders
    assert len({c.email for c in plan.customers}) == len(plan.customers) == SIZES[size].customers
    for customer in plan.customers:
        assert rules.email(customer.email) == customer.email
        assert rules.name(customer.name) == customer.name
    for item in plan.products:
        rules.sku(item.sku)
        rules.name(item.name)
        rules.description(item.description)
        rules.price_cents(item.price_cents)
    assert len({order.key for order in plan.orders}) == len(plan.orders)
    for order in plan.orders:
        rules.idempotency_key(order.key)
        skus = [sku for sku, _ in order.lines]
        assert len(set(skus)) == len(skus)
        assert rules.MIN_LINES <= len(order.lines) <= rules.MAX_LINES
        assert all(rules.MIN_QUANTITY <= qty <= rules.MAX_QUANTITY for _, qty in order.lines)
        # Customers order only once they have signed up.
        assert plan.customers[order.customer].joined_at < order.placed_at


@pytest.mark.parametrize("size", list(SIZES))
def test_the_history_spans_months_and_ends_before_now(size: str) -> None:
    plan = plan_shop(size, NOW)
    placed = [order.placed_at for order in plan.orders]
    assert placed == sorted(placed)
    assert placed[-1] - placed[0] > timedelta(days=SIZES[size].days * 0.8)
    assert placed[-1] < NOW
    fates = {fate: sum(o.fate is fate for o in plan.orders) for fate in Fate}
    assert all(count > 0 for count in fates.values()), fates
    assert fates[Fate.SHIPPED] > fates[Fate.CANCELLED]
    for order in plan.orders:
        if order.fate is Fate.PLACED:
            assert order.settled_at is None
        else:
            assert order.settled_at is not None
            assert order.placed_at < order.settled_at < NOW


def test_orders_buy_from_the_catalog_and_some_products_end_sold_out_or_low() -> None:
    plan = plan_shop("small", NOW)
    assert set(plan.demand()) <= {item.sku for item in plan.products}
    assert set(plan.leftover) == {item.sku for item in plan.products}
    assert any(left == 0 for left in plan.leftover.values())
    assert any(0 < left < 5 for left in plan.leftover.values())


def _unit_of_work(meta: CommandMetadata) -> UnitOfWork:
    # now() needs no session: none is opened outside `async with`.
    return UnitOfWork(cast("async_sessionmaker[AsyncSession]", None), meta)


def test_a_command_happens_now_unless_its_metadata_says_when() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    assert _unit_of_work(CommandMetadata(None, "now")).now() >= before
    backdated = _unit_of_work(CommandMetadata(None, "seed", occurred_at=NOW)).now()
    # Cut to milliseconds, as every row and event time is.
    assert backdated == NOW.replace(microsecond=535_000)


def test_a_given_moment_must_name_its_time_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CommandMetadata(None, "seed", occurred_at=datetime(2026, 1, 1))
