"""Two `shop serve` processes (two ports) and two `shop worker` processes over one set of
stores, as a load balancer would spread clients over API replicas: what one process
issues, the other honours. Bearer tokens, consistency tokens (read your own write through
the other process), persisted-query hashes and throttle counts, because the keys are
shared settings and the rest lives in Redis; and a subscriber on one process gets the
writes made through the other (pub/sub through Redis)."""

from __future__ import annotations

import hashlib

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.api_servers import api_servers
from tests.faults.replicas import admin_token, create_product, sign_up, start_workers
from tests.pipeline import Pipeline
from tests.shop_api import MY_ORDERS_UPDATED
from tests.support import (
    LOG_IN,
    ORDER_QUERY,
    TRANSPORT_WS,
    WAIT_S,
    GraphQLClient,
    graphql_ws,
    place_order,
    unique,
    ws_auth,
)

LOGIN_LIMIT = 3
ENV = {"LOGIN_ATTEMPTS_PER_ACCOUNT": str(LOGIN_LIMIT)}


async def test_what_one_api_process_issues_the_other_honours(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    async with api_servers(pipeline, 2, extra_env=ENV) as (first, second):
        await start_workers(pipeline)
        admin = await admin_token(engine, pipeline, first)
        product = await create_product(second, admin, stock=100)  # a bearer token from `first`
        customer = await sign_up(first)

        auth = ws_auth(customer.token)
        async with (
            graphql_ws(first.base_url, TRANSPORT_WS, auth) as on_first,
            graphql_ws(second.base_url, TRANSPORT_WS, auth) as on_second,
        ):
            subscribers = [(on_first, await on_first.subscribe(MY_ORDERS_UPDATED))]
            subscribers.append((on_second, await on_second.subscribe(MY_ORDERS_UPDATED)))
            for ws, _ in subscribers:
                await ws.sync()

            placed: list[str] = []
            served_from: set[str] = set()
            for n in range(10):
                writes, reads = (first, second) if n % 2 == 0 else (second, first)
                result = await place_order(writes.client, customer.token, [(product["id"], 1)])
                assert result["__typename"] == "OrderSuccess", result
                order = result["order"]
                # At once, through the other process, with the token: the write is there.
                body = await reads.client.gql(
                    ORDER_QUERY, {"id": order["id"]}, customer.token,
                    {"X-Consistency-Token": result["consistencyToken"]},
                )  # fmt: skip
                assert "errors" not in body, body
                assert body["data"]["order"] == order
                consistency = body["extensions"]["consistency"]
                assert consistency["token"] == result["consistencyToken"]
                served_from.add(consistency["servedFrom"])
                placed.append(order["id"])

            # Each subscriber got every order, whichever process took the write, once, in order.
            for ws, op_id in subscribers:
                pushed = [(await ws.data(op_id, WAIT_S))["myOrdersUpdated"] for _ in placed]
                assert [order["id"] for order in pushed] == placed
        assert served_from <= {"projection", "write_store"}

        await persisted_queries_are_shared(first.client, second.client)
        await throttles_are_shared(first.client, second.client, customer.email)


async def persisted_queries_are_shared(first: GraphQLClient, second: GraphQLClient) -> None:
    """A document registered through one process runs by its hash alone through the other."""
    document = f'query Shared {{ __typename products(first: 1, search: "{unique("apq")}") {{ edges {{ cursor }} }} }}'
    sha = hashlib.sha256(document.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    unknown = await second.http.post("/graphql", json={"extensions": persisted})
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await first.http.post(
        "/graphql", json={"query": document, "extensions": persisted}
    )
    assert registered.json()["data"]["__typename"] == "Query", registered.text
    by_hash = await second.http.post("/graphql", json={"extensions": persisted})
    assert by_hash.json()["data"] == registered.json()["data"], by_hash.text


async def throttles_are_shared(first: GraphQLClient, second: GraphQLClient, email: str) -> None:
    """logIn attempts on one account count together, whichever process they reach."""
    wrong = {"input": {"email": email, "password": "not-the-password"}}
    codes = []
    for n in range(LOGIN_LIMIT + 1):
        through = first if n % 2 == 0 else second
        codes.append((await through.data(LOG_IN, wrong))["logIn"]["code"])
    assert codes == ["INVALID_CREDENTIALS"] * LOGIN_LIMIT + ["RATE_LIMITED"]
