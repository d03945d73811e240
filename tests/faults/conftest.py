"""Fixtures of the fault tests: an isolated read side per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from app.settings import Settings
from tests.pipeline import Pipeline, isolated_pipeline


@pytest_asyncio.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    async with isolated_pipeline(settings) as pipeline:
        yield pipeline
