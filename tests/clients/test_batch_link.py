"""Apollo Client's BatchHttpLink against an app with BATCHING on (an app of its own: the
session's keeps the default, batching off)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.asgi import create_app
from tests.conftest import Api
from tests.support import free_port, serving

pytestmark = pytest.mark.node

HERE = Path(__file__).parent
NODE_BUDGET_S = 120


async def test_apollo_batch_http_link_gets_every_result_in_one_request(api: Api) -> None:
    settings = api.settings.model_copy(update={"batching": True, "batch_max_operations": 10})
    async with serving(create_app(settings), free_port()) as client:
        node = await asyncio.create_subprocess_exec(
            "node",
            str(HERE / "batch_link.mjs"),
            str(client.http.base_url.join("/graphql")),
            cwd=HERE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(NODE_BUDGET_S):
            output, _ = await node.communicate()

    assert node.returncode == 0, output.decode()
    assert "batched 3 queries in 1 request" in output.decode()
