"""The service refuses an un-migrated database and names the command to run, and that
command (`shop migrate`) makes it acceptable."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from app.bootstrap import build_engine, load_settings
from app.settings import Settings
from tests.support import unique
from writes.db import DatabaseNotMigrated, ensure_migrated


@pytest_asyncio.fixture
async def empty_database(services: Settings) -> AsyncIterator[str]:
    assert services.database_url is not None
    server = make_url(services.database_url).set(drivername="postgresql")
    name = unique("shop_empty").replace("-", "_")
    conn = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield server.set(database=name).render_as_string(hide_password=False)
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def test_an_unmigrated_database_is_refused_until_shop_migrate_ran(
    empty_database: str, services: Settings
) -> None:
    engine = build_engine(load_settings(database_url=empty_database), pool_size=1, max_overflow=0)
    try:
        with pytest.raises(DatabaseNotMigrated, match="run `shop migrate`"):
            await ensure_migrated(engine)
        migrated = await _shop("migrate", empty_database, services)
        assert migrated.returncode == 0, migrated.stderr
        assert "database schema is up to date" in migrated.stderr
        await ensure_migrated(engine)
    finally:
        await engine.dispose()


async def test_shop_serve_exits_with_the_command_to_run(
    empty_database: str, services: Settings
) -> None:
    result = await _shop("serve", empty_database, services)
    assert result.returncode == 2
    assert "run `shop migrate`" in result.stderr


async def _shop(
    command: str, database_url: str, services: Settings
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": services.redis_url or "",
        "MONGODB_URL": services.mongodb_url or "",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
