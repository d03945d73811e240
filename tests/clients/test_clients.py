"""Real clients nobody here wrote run the shop flow over real HTTP and websockets, with
the code docs/clients.md gives: mutations, read-your-writes through the token link, paging,
and a subscription event after a mutation (tests/clients/flow.mjs)."""

from __future__ import annotations

import pytest

from tests.clients.node import run_node
from tests.conftest import Api
from tests.pipeline import Pipeline

pytestmark = pytest.mark.node


def flow_env(api: Api, admin_token: str) -> dict[str, str]:
    return {"SHOP_URL": f"{api.base_url}/graphql", "ADMIN_TOKEN": admin_token}


async def test_apollo_client_runs_the_shop_flow(
    api: Api, admin_token: str, read_side: Pipeline
) -> None:
    out = await run_node("apollo-flow.mjs", flow_env(api, admin_token))
    assert "cancellation pushed" in out, out


async def test_urql_runs_the_shop_flow(api: Api, admin_token: str, read_side: Pipeline) -> None:
    out = await run_node("urql-flow.mjs", flow_env(api, admin_token))
    assert "cancellation pushed" in out, out


async def test_graphql_sse_runs_a_query_and_a_subscription_in_both_modes(
    api: Api, admin_token: str, read_side: Pipeline
) -> None:
    out = await run_node("sse-flow.mjs", flow_env(api, admin_token))
    assert "(singleConnection: false): query and cancellation pushed" in out, out
    assert "(singleConnection: true): query and cancellation pushed" in out, out
