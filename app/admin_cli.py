"""`shop admin create`: an admin account, written through the command bus."""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.services import resolved_settings
from app.settings import Settings


def create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from writes.bus import MessageBus
    from writes.commands import CreateAdmin
    from writes.db import create_engine, ensure_migrated, session_factory
    from writes.errors import DomainError
    from writes.nudge import ArqNudger, arq_redis
    from writes.unit_of_work import CommandMetadata

    async def create(resolved: Settings) -> int:
        assert resolved.database_url is not None
        assert resolved.redis_url is not None
        engine = create_engine(resolved.database_url, pool_size=1, max_overflow=0)
        redis = arq_redis(resolved.redis_url)
        try:
            await ensure_migrated(engine)
            bus = MessageBus(session_factory(engine), ArqNudger(redis, resolved.redis_prefix))
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
