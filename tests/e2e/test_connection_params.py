"""connection_init parameters are read as HTTP headers are: by name, in any letter case.

Clients pass their HTTP headers as the websocket's connectionParams (GraphiQL sends its
headers pane as it is typed: {"Authorization": "Bearer ..."}), so a capital letter must
not turn a customer into an anonymous caller.
"""

from __future__ import annotations

import pytest

from tests.conftest import Api, Customer, sign_up
from tests.pipeline import Pipeline
from tests.support import LEGACY_WS, TRANSPORT_WS, graphql_ws, new_product, place_order

MY_ORDERS_UPDATED = "subscription { myOrdersUpdated { id status customer { id } } }"


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_the_token_is_found_whatever_the_letter_case_of_its_name(
    api: Api, admin_token: str, read_side: Pipeline, name: str, protocol: str
) -> None:
    customer: Customer = await sign_up(api)
    product = await new_product(api.client, admin_token, stock=5)
    async with graphql_ws(api.base_url, protocol, {name: f"Bearer {customer.token}"}) as ws:
        op_id = await ws.subscribe(MY_ORDERS_UPDATED)
        await ws.sync()
        placed = await place_order(api.client, customer.token, [(product["id"], 1)])
        assert placed["__typename"] == "OrderSuccess", placed
        pushed = (await ws.data(op_id))["myOrdersUpdated"]
    assert (pushed["id"], pushed["customer"]["id"]) == (placed["order"]["id"], customer.id)


@pytest.mark.parametrize("name", ["consistencyToken", "X-Consistency-Token", "x-consistency-token"])
async def test_the_consistency_token_is_found_by_its_header_name_too(
    api: Api, customer: Customer, name: str
) -> None:
    """Found, it is checked: a forged one is refused at connection_init (BAD_USER_INPUT)."""
    payload = {"Authorization": f"Bearer {customer.token}", name: "not-a-token"}
    async with graphql_ws(api.base_url, LEGACY_WS, ack=False) as ws:
        reply = await ws.init(payload)
        assert reply["type"] == "connection_error", reply
        assert reply["payload"]["code"] == "BAD_USER_INPUT", reply
        await ws.closed()
