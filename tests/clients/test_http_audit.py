"""The graphql-http audit (npm graphql-http's serverAudits) against the live API: no error
and no warning, save those tests/clients/audit.mjs allows with a decision record each."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.node

HERE = Path(__file__).parent
AUDIT_BUDGET_S = 120


async def test_the_graphql_over_http_audit_passes(api: Api) -> None:
    node = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "audit.mjs"),
        f"{api.base_url}/graphql",
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(AUDIT_BUDGET_S):
        output, _ = await node.communicate()
    print(output.decode())
    assert node.returncode == 0, output.decode()
    assert "not allowed" in output.decode()  # it ran the audits, not just started
