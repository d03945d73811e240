"""`shop seed` on the command line, and the hint `shop dev` prints on an empty database."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.process import resolved_settings

if TYPE_CHECKING:
    from app.settings import Settings

EMPTY_SHOP_HINT = (
    "the shop is empty: run `.venv/bin/shop seed` beside `make dev` for a demo shop "
    "(products, customers and months of orders; --size small|medium|large)"
)


def add_command(commands: Any) -> None:
    from app.seed.plan import SIZES

    seed = commands.add_parser(
        "seed", help="write a demo shop (catalog, customers, months of orders); safe to rerun"
    )
    seed.add_argument(
        "--size",
        choices=tuple(SIZES),
        default="small",
        help="small: 300 orders over 3 months; medium: 3000 over 6; large: 12000 over 12",
    )
    seed.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Plan the demo shop of the chosen size and write what the database lacks of it."""
    if not settings.is_development:
        # Demo accounts share a published password: never in a real shop.
        print("shop: seed writes demo accounts with a published password: "
              "it runs only with ENVIRONMENT=development", file=sys.stderr)  # fmt: skip
        return 2
    with resolved_settings(settings, postgres=True, redis=True) as resolved:
        return asyncio.run(_seed(resolved, args.size))


async def _seed(settings: Settings, size: str) -> int:
    from app.bootstrap import build_bus, build_engine, build_redis, nudger
    from app.seed.plan import ADMIN_EMAIL, DEMO_PASSWORD, plan_shop
    from app.seed.writer import DemoShopWriter, SeedConflict
    from writes.db import ensure_migrated, session_factory
    from writes.errors import DomainError

    started = time.monotonic()
    plan = plan_shop(size, datetime.now(UTC))
    engine = build_engine(settings, pool_size=4, max_overflow=0)
    redis = build_redis(settings)
    try:
        await ensure_migrated(engine)
        sessions = session_factory(engine)
        bus = build_bus(settings, engine, nudger(settings, redis))
        report = await DemoShopWriter(bus, sessions, plan).run()
    except (DomainError, SeedConflict) as exc:
        print(f"shop: seed stopped: {exc} (what was written stays; run it again to finish)",
              file=sys.stderr)  # fmt: skip
        return 1
    finally:
        await redis.aclose(close_connection_pool=True)
        await engine.dispose()
    seconds = time.monotonic() - started
    if not report.wrote_anything:
        print(f"the {size} demo shop was already there: nothing written ({seconds:.1f} s)")
    else:
        print(f"{size} demo shop written in {seconds:.1f} s: "
              f"{report.products_created} products created, "
              f"{report.products_restocked} restocked, "
              f"{report.customers_signed_up} customers, {report.orders_placed} orders placed, "
              f"{report.orders_shipped} shipped, {report.orders_cancelled} cancelled")  # fmt: skip
    print(f"log in as {plan.customers[0].email} (a regular customer) or {ADMIN_EMAIL} "
          f"(admin), password {DEMO_PASSWORD}")  # fmt: skip
    return 0


def shop_is_empty(settings: Settings) -> bool:
    """Whether the migrated database the settings name holds no product yet."""
    return asyncio.run(_no_products(settings))


async def _no_products(settings: Settings) -> bool:
    from sqlalchemy import select

    from app.bootstrap import build_engine
    from writes.models import Product

    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(select(Product.id).limit(1)) is None
    finally:
        await engine.dispose()
