"""`shop seed`, run as a user runs it, fills an empty shop that the README's queries then show;
a second run adds nothing."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.asgi import create_app
from app.bootstrap import build_engine
from app.seed.command import shop_is_empty
from app.seed.plan import ADMIN_EMAIL
from app.settings import PROJECT_ROOT, Settings
from tests.conftest import own_stores
from tests.pipeline import isolated_pipeline, shop
from tests.support import GraphQLClient, serving

SEED_BUDGET_S = 600
TABLES = ("customers", "products", "orders", "order_lines", "idempotency_keys", "event_log")


def readme_queries() -> dict[str, str]:
    """The GraphQL blocks of the README's "Demo data" section, by the field each one asks."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Demo data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```graphql\n(.*?)```", section, re.DOTALL)
    by_field = {}
    for block in blocks:
        field = re.search(r"(products|logIn|myOrders|salesDashboard)\(?", block)
        assert field is not None, block
        by_field[field.group(1)] = block
    assert set(by_field) == {"products", "logIn", "myOrders", "salesDashboard"}, by_field
    return by_field


@pytest.fixture
def settings(services: Settings) -> Iterator[Settings]:
    """An empty shop of this test's own: the seed writes a whole catalog and history."""
    with own_stores(services, f"shop_seed_{uuid.uuid4().hex[:8]}") as own:
        yield own


@pytest_asyncio.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(settings, pool_size=2, max_overflow=0)
    yield engine
    await engine.dispose()


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            table: int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
            for table in TABLES
        }


async def head(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT coalesce(max(position), 0) FROM event_log")))


async def log_in(client: GraphQLClient, query: str, email: str) -> str:
    """The README's logIn mutation, for `email` (the README shows the demo customer's)."""
    data = await client.data(query.replace("ava.brooks@example.com", email))
    token: str = data["logIn"]["token"]
    return token


async def test_seed_fills_the_readme_queries_and_a_second_run_adds_nothing(
    settings: Settings, engine: AsyncEngine
) -> None:
    assert settings.database_url is not None
    queries = readme_queries()
    assert await asyncio.to_thread(shop_is_empty, settings)
    async with isolated_pipeline(settings) as pipeline:
        await pipeline.start_worker()
        code, out, err = await shop(pipeline, "seed", "--size", "small", budget_s=SEED_BUDGET_S)
        assert code == 0, err
        assert "small demo shop written" in out, out
        assert not await asyncio.to_thread(shop_is_empty, settings)
        await pipeline.wait_until_projected(await head(engine), budget_s=SEED_BUDGET_S)

        port = pipeline.settings.port
        async with serving(create_app(pipeline.settings), port) as client:
            await _readme_queries_show_the_shop(client, queries, engine)

        differences = await pipeline.verify(engine)
        assert not any(differences.values()), differences

        before = await row_counts(engine)
        code, out, err = await shop(pipeline, "seed", "--size", "small", budget_s=SEED_BUDGET_S)
        assert code == 0, err
        assert "nothing written" in out, out
        assert await row_counts(engine) == before


async def _readme_queries_show_the_shop(
    client: GraphQLClient, queries: dict[str, str], engine: AsyncEngine
) -> None:
    products = (await client.data(queries["products"]))["products"]["edges"]
    assert products, "the catalog search of the README found nothing"
    assert all(edge["node"]["sku"].startswith("DEMO-") for edge in products)

    customer = await log_in(client, queries["logIn"], "ava.brooks@example.com")
    orders = [
        edge["node"]
        for edge in (await client.data(queries["myOrders"], token=customer))["myOrders"]["edges"]
    ]
    assert orders, "the demo customer has no orders"
    assert all(order["lines"] and order["totalCents"] > 0 for order in orders)
    everything = await _all_orders(client, customer)
    statuses = {order["status"] for order in everything}
    assert {"SHIPPED", "PLACED"} <= statuses, statuses
    placed = sorted(datetime.fromisoformat(order["placedAt"]) for order in everything)
    # A history over months, not a burst of orders all placed while the seed ran.
    assert placed[-1] - placed[0] > timedelta(days=30), (placed[0], placed[-1])
    assert placed[-1] < datetime.now(UTC)

    admin = await log_in(client, queries["logIn"], ADMIN_EMAIL)
    dashboard = (await client.data(queries["salesDashboard"], token=admin))["salesDashboard"]
    stored = await _order_totals(engine)
    assert dashboard["orderCount"] == stored["live"] > 0
    assert dashboard["cancelledCount"] == stored["cancelled"] > 0
    assert dashboard["revenueCents"] == stored["revenue"]
    assert len(dashboard["daily"]) == 7  # orders fell on more than a week of days
    assert dashboard["topProducts"]


async def _all_orders(client: GraphQLClient, token: str) -> list[dict[str, Any]]:
    query = """query($after: String) { myOrders(first: 100, after: $after) {
        edges { node { status placedAt } } pageInfo { hasNextPage endCursor } } }"""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await client.data(query, {"after": after}, token))["myOrders"]
        found += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def _order_totals(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE status <> 'CANCELLED') AS live, "
                    "count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled, "
                    "coalesce(sum(total_cents) FILTER (WHERE status <> 'CANCELLED'), 0) AS revenue "
                    "FROM orders"
                )
            )
        ).one()
    return {"live": int(row.live), "cancelled": int(row.cancelled), "revenue": int(row.revenue)}
