"""The versions of the servers the run used."""

from __future__ import annotations

from typing import Any

import asyncpg
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from app.bootstrap import build_mongo, load_settings
from app.settings import Settings
from bench.stack import libpq


async def server_versions(settings: Settings) -> list[tuple[str, str]]:
    assert settings.database_url is not None
    assert settings.mongodb_url is not None
    assert settings.redis_url is not None
    conn = await asyncpg.connect(libpq(settings.database_url))
    try:
        postgres = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    mongo: AsyncMongoClient[dict[str, Any]] = build_mongo(settings, patient=True)
    try:
        mongodb = (await mongo.server_info())["version"]
    finally:
        await mongo.close()
    redis = Redis.from_url(settings.redis_url)
    try:
        redis_version = (await redis.info("server"))["redis_version"]
    finally:
        await redis.aclose()
    embedded = "" if load_settings().database_url else " (embedded unless the URL was set)"
    return [
        ("servers" + embedded, f"PostgreSQL {postgres}, MongoDB {mongodb}, Redis {redis_version}")
    ]
