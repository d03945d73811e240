"""`shop admin create`: an admin account, written through the command bus."""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.process import resolved_settings
from app.settings import Settings


def create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from app.bootstrap import build_bus, build_engine, build_redis, nudger
    from writes.commands import CreateAdmin
    from writes.db import ensure_migrated
    from writes.errors import DomainError
    from writes.unit_of_work import CommandMetadata

    async def create(resolved: Settings) -> int:
        engine = build_engine(resolved, pool_size=1, max_overflow=0)
        redis = build_redis(resolved)
        try:
            await ensure_migrated(engine)
            bus = build_bus(resolved, engine, nudger(resolved, redis))
            command = CreateAdmin(email=args.email, name=args.name, password=args.password)
            committed = await bus.handle(command, CommandMetadata(None, "cli-admin-create"))
        except DomainError as exc:
            print(f"shop: admin not created: {exc}", file=sys.stderr)
            return 1
        finally:
            await redis.aclose(close_connection_pool=True)
            await engine.dispose()
        print(f"admin {committed.value.email} created with id {committed.value.id}")
        return 0

    with resolved_settings(settings, postgres=True, redis=True) as resolved:
        return asyncio.run(create(resolved))
