"""Subscriptions over real websockets, in both sub-protocols, against the running server.

The worker (`read_side`) projects every write and announces each batch on Redis; the API
pushes what changed to the subscribers allowed to read it. Neither protocol acknowledges
a subscription, so a test makes a round trip through the server's message loop (`sync`)
before it writes: the write then still has to commit, be projected and be announced,
far longer than a started subscription takes to listen. Exact replay uses afterToken.
"""

from __future__ import annotations

import base64
import json
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from app.settings import Settings
from schema.auth import TokenService
from tests.conftest import Api, Customer, sign_up
from tests.pipeline import ALL, Pipeline
from tests.shop_api import (
    MY_ORDERS_UPDATED,
    PRODUCT_UPDATED,
    codes,
    create_product,
    place_ok,
)
from tests.support import (
    CANCEL_ORDER,
    CHANGE_PRICE,
    CREATE_PRODUCT,
    RESTOCK,
    SHIP_ORDER,
    TRANSPORT_WS,
    WS_PROTOCOLS,
    GraphQLWebSocket,
    consistency_tokens,
    graphql_ws,
    token_position,
    unique,
    ws_auth,
)

ORDER_UPDATED = """subscription($id: ID!) {
  orderUpdated(id: $id) { id status version customer { id } }
}"""
SALES_DASHBOARD_UPDATED = """subscription {
  salesDashboardUpdated { orderCount revenueCents cancelledCount averageOrderCents }
}"""
PROJECTION_PROGRESS = """subscription {
  projectionProgress { name position headPosition lagEvents lagMs state lastError }
}"""
SALES_DASHBOARD = "query { salesDashboard { orderCount revenueCents cancelledCount } }"

# Longer than any timeout a live subscription may hit while nothing changes (the API's
# Redis client times reads out after app.asgi.REDIS_TIMEOUT_S = 2 s).
IDLE_S = 3.5

pytestmark = pytest.mark.parametrize("protocol", WS_PROTOCOLS)


# Helpers --------------------------------------------------------------------------------


@asynccontextmanager
async def subscriber(
    api: Api, protocol: str, token: str | None = None
) -> AsyncIterator[GraphQLWebSocket]:
    async with graphql_ws(api.base_url, protocol, ws_auth(token)) as ws:
        yield ws


async def projected(read_side: Pipeline, result: dict[str, Any]) -> None:
    """Wait until every projection reached the write that returned `result`."""
    await read_side.wait_until_projected(token_position(result["consistencyToken"]))


async def mutate(api: Api, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    data = await api.client.data(query, {"input": variables}, token)
    (result,) = data.values()
    assert result["__typename"] in {"OrderSuccess", "ProductSuccess"}, result
    return dict(result)


async def new_product(
    api: Api, admin_token: str, read_side: Pipeline, *, stock: int = 10, price: int = 1250
) -> dict[str, Any]:
    """A product created through the API, once every projection has it."""
    created = await mutate(
        api,
        CREATE_PRODUCT,
        {"sku": unique("SKU"), "name": "Green mug", "priceCents": price, "stock": stock},
        admin_token,
    )
    await projected(read_side, created)
    return dict(created["product"])


def order_state(pushed: dict[str, Any]) -> tuple[str, str, int]:
    order = pushed["orderUpdated"] if "orderUpdated" in pushed else pushed["myOrdersUpdated"]
    return order["id"], order["status"], order["version"]


async def assert_refused(ws: GraphQLWebSocket, op_id: str, code: str) -> None:
    """The operation fails with one error coded `code`, and ends."""
    event = await ws.event(op_id)
    assert event.errors, event
    assert codes(event.errors) == [code], event.errors
    if event.kind == "data":  # a result carrying the error, then `complete`
        assert (await ws.event(op_id)).kind == "complete"


# Every Subscription field ---------------------------------------------------------------


async def test_order_updated_pushes_the_order_to_its_owner_and_to_admins(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline, protocol: str
) -> None:
    product = await create_product(api, admin_token, stock=10)
    first = await place_ok(api, customer.token, product["id"])
    second = await place_ok(api, customer.token, product["id"])
    first_id, second_id = first["order"]["id"], second["order"]["id"]
    await projected(read_side, second)

    async with (
        subscriber(api, protocol, customer.token) as owner,
        subscriber(api, protocol, admin_token) as admin,
    ):
        owners_first = await owner.subscribe(ORDER_UPDATED, {"id": first_id})
        admins_first = await admin.subscribe(ORDER_UPDATED, {"id": first_id})
        admins_second = await admin.subscribe(ORDER_UPDATED, {"id": second_id})
        await owner.sync()
        await admin.sync()

        await mutate(api, SHIP_ORDER, {"orderId": second_id}, admin_token)
        shipped = await admin.data(admins_second)
        assert order_state(shipped) == (second_id, "SHIPPED", 2)
        assert shipped["orderUpdated"]["customer"]["id"] == customer.id

        # The second order changed first: had it leaked into the first order's
        # subscriptions, it would come before the cancellation.
        await mutate(api, CANCEL_ORDER, {"orderId": first_id}, customer.token)
        assert order_state(await owner.data(owners_first)) == (first_id, "CANCELLED", 2)
        assert order_state(await admin.data(admins_first)) == (first_id, "CANCELLED", 2)


async def test_my_orders_updated_pushes_only_the_subscribers_own_orders(
    api: Api, admin_token: str, read_side: Pipeline, protocol: str
) -> None:
    alice, bob = await sign_up(api, "Alice Able"), await sign_up(api, "Bob Baker")
    product = await create_product(api, admin_token, stock=20)

    async with (
        subscriber(api, protocol, alice.token) as alices,
        subscriber(api, protocol, bob.token) as bobs,
    ):
        alice_op = await alices.subscribe(MY_ORDERS_UPDATED)
        bob_op = await bobs.subscribe(MY_ORDERS_UPDATED)
        await alices.sync()
        await bobs.sync()

        # Interleaved, so that a leak would show up between a subscriber's own orders.
        placed: dict[str, list[str]] = {alice.id: [], bob.id: []}
        for who in (bob, alice, bob, alice, bob):
            order = (await place_ok(api, who.token, product["id"]))["order"]
            placed[who.id].append(order["id"])

        for ws, op_id, who in ((alices, alice_op, alice), (bobs, bob_op, bob)):
            received = []
            for _ in placed[who.id]:
                pushed = (await ws.data(op_id))["myOrdersUpdated"]
                assert pushed["customer"]["id"] == who.id, pushed
                received.append((pushed["id"], pushed["status"]))
            assert received == [(order_id, "PLACED") for order_id in placed[who.id]]

        # One more of Alice's: the next thing she hears of is it, not any of Bob's.
        last = (await place_ok(api, alice.token, product["id"]))["order"]
        assert order_state(await alices.data(alice_op)) == (last["id"], "PLACED", 1)


async def test_product_updated_with_and_without_an_id(
    api: Api, admin_token: str, read_side: Pipeline, protocol: str
) -> None:
    watched = await new_product(api, admin_token, read_side, stock=5, price=1000)
    other = await new_product(api, admin_token, read_side, stock=7, price=2000)

    async with subscriber(api, protocol) as ws:  # products are public: no token
        one = await ws.subscribe(PRODUCT_UPDATED, {"id": watched["id"]})
        every = await ws.subscribe(PRODUCT_UPDATED)
        await ws.sync()

        await mutate(api, RESTOCK, {"productId": other["id"], "quantity": 3}, admin_token)
        await mutate(api, RESTOCK, {"productId": watched["id"], "quantity": 4}, admin_token)
        await mutate(
            api, CHANGE_PRICE, {"productId": watched["id"], "priceCents": 899}, admin_token
        )

        # A subscriber gets each document in its state when the notification is read, so
        # two quick changes may arrive as one; the latest state always arrives.
        final = (watched["id"], 9, 899, 3)
        watched_only = await product_states(ws, one, until=final)
        assert watched_only[0][0] == watched["id"]  # the other changed first: no leak
        assert {state[0] for state in watched_only} == {watched["id"]}
        assert set(watched_only) <= {(watched["id"], 9, 1000, 2), final}

        everything = await product_states(ws, every, until=final)
        assert everything[0] == (other["id"], 10, 2000, 2)
        assert set(everything[1:]) <= {(watched["id"], 9, 1000, 2), final}


async def product_states(
    ws: GraphQLWebSocket, op_id: str, until: tuple[str, int, int, int]
) -> list[tuple[str, int, int, int]]:
    """(id, stock, priceCents, version) of each pushed product, up to `until`; each
    product's versions only go up."""
    states: list[tuple[str, int, int, int]] = []
    while until not in states:
        assert len(states) < 10, states
        product = (await ws.data(op_id))["productUpdated"]
        state = (product["id"], product["stock"], product["priceCents"], product["version"])
        assert all(s[3] < state[3] for s in states if s[0] == state[0]), (states, state)
        states.append(state)
    return states


async def test_sales_dashboard_updated_pushes_the_dashboard_after_an_order(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline, protocol: str
) -> None:
    product = await new_product(api, admin_token, read_side, stock=10, price=700)
    before = (await api.client.data(SALES_DASHBOARD, token=admin_token))["salesDashboard"]

    async with subscriber(api, protocol, admin_token) as ws:
        op_id = await ws.subscribe(SALES_DASHBOARD_UPDATED)
        await ws.sync()
        await place_ok(api, customer.token, product["id"], quantity=3)

        wanted = (before["orderCount"] + 1, before["revenueCents"] + 2100)
        seen: list[tuple[int, int]] = []
        while wanted not in seen:
            assert len(seen) < 20, f"no dashboard with {wanted} among {seen}"
            dashboard = (await ws.data(op_id))["salesDashboardUpdated"]
            seen.append((dashboard["orderCount"], dashboard["revenueCents"]))
        assert dashboard["cancelledCount"] == before["cancelledCount"]
        assert dashboard["averageOrderCents"] == dashboard["revenueCents"] // wanted[0]


async def test_projection_progress_pushes_each_projections_progress(
    api: Api, admin_token: str, read_side: Pipeline, protocol: str
) -> None:
    product = await create_product(api, admin_token)

    async with subscriber(api, protocol, admin_token) as ws:
        op_id = await ws.subscribe(PROJECTION_PROGRESS)
        await ws.sync()
        restocked = await mutate(
            api, RESTOCK, {"productId": product["id"], "quantity": 1}, admin_token
        )
        position = token_position(restocked["consistencyToken"])

        # Every projection commits a batch for the restock (one that ignores it too: its
        # checkpoint moves), and nothing is written after it.
        reached: dict[str, dict[str, Any]] = {}
        for _ in range(50):
            status = (await ws.data(op_id))["projectionProgress"]
            assert int(status["position"]) <= position, status
            if int(status["position"]) == position:
                reached[status["name"]] = status
            if set(reached) == set(ALL):
                break
        else:
            raise AssertionError(f"only {sorted(reached)} reported reaching {position}")
    for status in reached.values():
        assert status["headPosition"] == str(position), status
        assert status["lastError"] is None, status
        # The session's worker owns it. The lag is the one the worker recorded last (once a
        # second), perhaps just before this batch: live when that found nothing left.
        expected = "live" if status["lagEvents"] == 0 else "catching_up"
        assert status["state"] == expected, status


async def test_an_idle_subscription_stays_live(
    api: Api, admin_token: str, read_side: Pipeline, protocol: str
) -> None:
    product = await new_product(api, admin_token, read_side, stock=1)

    async with subscriber(api, protocol) as ws:
        op_id = await ws.subscribe(PRODUCT_UPDATED, {"id": product["id"]})
        await ws.sync()
        # Nothing changes for a while: nothing may arrive, not even an error.
        try:
            event = await ws.event(op_id, budget_s=IDLE_S)
        except TimeoutError:
            pass
        else:
            pytest.fail(f"an idle subscription received {event}")

        await mutate(api, RESTOCK, {"productId": product["id"], "quantity": 2}, admin_token)
        assert (await ws.data(op_id))["productUpdated"]["stock"] == 3


async def test_messages_travel_in_text_frames(
    api: Api, admin_token: str, read_side: Pipeline, protocol: str
) -> None:
    """Both protocols send JSON as text; graphql-ws's browser client, for one, only
    parses string frames and closes the socket on anything else."""
    product = await new_product(api, admin_token, read_side)

    async with subscriber(api, protocol) as ws:
        op_id = await ws.subscribe(
            PRODUCT_UPDATED, {"id": product["id"], "after": consistency_tokens().issue(0)}
        )
        assert (await ws.data(op_id))["productUpdated"]["id"] == product["id"]
        assert ws.binary_frames == 0, "connection_ack and results came as binary frames"


# Refusals -------------------------------------------------------------------------------


async def test_order_updated_on_another_customers_order_is_as_silent_as_an_unknown_id(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline, protocol: str
) -> None:
    """No existence oracle: another customer's order neither errors nor pushes, exactly as
    an id that names nothing; the socket's own subscription shows the changes went by."""
    owner = await sign_up(api, "Olga Owner")
    product = await create_product(api, admin_token)
    placed = await place_ok(api, owner.token, product["id"])
    await projected(read_side, placed)

    async with subscriber(api, protocol, customer.token) as ws:
        foreign = await ws.subscribe(ORDER_UPDATED, {"id": placed["order"]["id"]})
        unknown = await ws.subscribe(ORDER_UPDATED, {"id": str(uuid.uuid4())})
        mine = await ws.subscribe(MY_ORDERS_UPDATED)
        await ws.sync()
        await mutate(api, CANCEL_ORDER, {"orderId": placed["order"]["id"]}, owner.token)
        own = await place_ok(api, customer.token, product["id"])

        # The cancellation was projected (and notified) before the customer's own order.
        assert order_state(await ws.data(mine))[0] == own["order"]["id"]
        # Waiting on one operation keeps the others' messages: the second check is quick.
        for op_id, budget_s in ((foreign, IDLE_S), (unknown, 0.5)):
            with pytest.raises(TimeoutError):
                await ws.event(op_id, budget_s=budget_s)


@pytest.mark.parametrize(
    "query",
    [ORDER_UPDATED, MY_ORDERS_UPDATED, SALES_DASHBOARD_UPDATED, PROJECTION_PROGRESS],
    ids=["orderUpdated", "myOrdersUpdated", "salesDashboardUpdated", "projectionProgress"],
)
async def test_subscriptions_that_need_a_token_refuse_anonymous_callers(
    api: Api, read_side: Pipeline, protocol: str, query: str
) -> None:
    async with subscriber(api, protocol) as ws:
        op_id = await ws.subscribe(query, {"id": str(uuid.uuid4())} if "$id" in query else {})
        await assert_refused(ws, op_id, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "query",
    [SALES_DASHBOARD_UPDATED, PROJECTION_PROGRESS],
    ids=["salesDashboardUpdated", "projectionProgress"],
)
async def test_admin_subscriptions_are_forbidden_to_customers(
    api: Api, customer: Customer, read_side: Pipeline, protocol: str, query: str
) -> None:
    async with subscriber(api, protocol, customer.token) as ws:
        op_id = await ws.subscribe(query)
        await assert_refused(ws, op_id, "FORBIDDEN")


def _tampered(token: str) -> str:
    """The same signature over claims promoted to admin."""
    header, claims, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["role"] = "ADMIN"
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def _bad_init(settings: Settings, customer: Customer, case: str) -> dict[str, Any]:
    tokens = TokenService(
        settings.jwt_secret, settings.jwt_algorithm, settings.jwt_ttl_seconds, settings.jwt_issuer
    )
    customer_id = uuid.UUID(customer.id)
    match case:
        case "garbage":
            return ws_auth("not-a-jwt")
        case "expired":
            expired = TokenService(
                settings.jwt_secret, settings.jwt_algorithm, -60, settings.jwt_issuer
            )
            return ws_auth(expired.issue(customer_id, "CUSTOMER"))
        case "tampered":
            return ws_auth(_tampered(customer.token))
        case "other-secret":
            forger = TokenService("x" * 64, settings.jwt_algorithm, 3600, settings.jwt_issuer)
            return ws_auth(forger.issue(customer_id, "ADMIN"))
        case "not-bearer":
            return {"authorization": f"Basic {tokens.issue(customer_id, 'CUSTOMER')}"}
        case "bad-consistency-token":
            return ws_auth(customer.token, consistency_token="not-a-token")
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["garbage", "expired", "tampered", "other-secret", "not-bearer", "bad-consistency-token"],
)
async def test_a_bad_token_in_connection_init_is_rejected(
    api: Api, settings: Settings, customer: Customer, protocol: str, case: str
) -> None:
    payload = _bad_init(settings, customer, case)
    async with graphql_ws(api.base_url, protocol, ack=False) as ws:
        if protocol == TRANSPORT_WS:
            with pytest.raises(ConnectionClosed):
                await ws.init(payload)
            assert await ws.closed() == 4403
        else:
            reply = await ws.init(payload)
            assert reply["type"] == "connection_error", reply
            expected = "BAD_USER_INPUT" if case == "bad-consistency-token" else "UNAUTHENTICATED"
            assert reply["payload"]["code"] == expected, reply
            await ws.closed()

    # The same customer's good token is accepted (the refusal was about the token).
    async with subscriber(api, protocol, customer.token) as ws:
        await ws.sync()


# afterToken -----------------------------------------------------------------------------


async def test_after_token_replays_exactly_what_was_missed_then_goes_live(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline, protocol: str
) -> None:
    product = await create_product(api, admin_token, stock=50)

    async with subscriber(api, protocol, customer.token) as ws:
        op_id = await ws.subscribe(MY_ORDERS_UPDATED)
        await ws.sync()
        first = await place_ok(api, customer.token, product["id"])
        assert order_state(await ws.data(op_id)) == (first["order"]["id"], "PLACED", 1)
        second = await place_ok(api, customer.token, product["id"])
        assert order_state(await ws.data(op_id)) == (second["order"]["id"], "PLACED", 1)
    last_seen = second["consistencyToken"]

    # While disconnected: three more orders, one of them cancelled, and an order the
    # client had already seen cancelled too.
    missed = [(await place_ok(api, customer.token, product["id"]))["order"] for _ in range(3)]
    cancelled_new = await mutate(api, CANCEL_ORDER, {"orderId": missed[1]["id"]}, customer.token)
    cancelled_seen = await mutate(
        api, CANCEL_ORDER, {"orderId": first["order"]["id"]}, customer.token
    )
    assert token_position(cancelled_new["consistencyToken"]) > token_position(last_seen)
    await projected(read_side, cancelled_seen)

    async with subscriber(api, protocol, customer.token) as ws:
        op_id = await ws.subscribe(MY_ORDERS_UPDATED, {"after": last_seen})
        # Each document once, in its latest state, in the order it last changed.
        replayed = [order_state(await ws.data(op_id)) for _ in range(4)]
        assert replayed == [
            (missed[0]["id"], "PLACED", 1),
            (missed[2]["id"], "PLACED", 1),
            (missed[1]["id"], "CANCELLED", 2),
            (first["order"]["id"], "CANCELLED", 2),
        ]

        # Live: the next message is the new order (no duplicate of the replay before it),
        # and the one after is its cancellation (no duplicate of it either).
        live = (await place_ok(api, customer.token, product["id"]))["order"]
        assert order_state(await ws.data(op_id)) == (live["id"], "PLACED", 1)
        await mutate(api, CANCEL_ORDER, {"orderId": live["id"]}, customer.token)
        assert order_state(await ws.data(op_id)) == (live["id"], "CANCELLED", 2)


async def test_after_token_of_a_write_not_yet_projected_does_not_resend_it(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline, protocol: str
) -> None:
    """A client that placed an order and subscribes with the token placeOrder returned
    already has that order: it must not get it again when the worker catches up."""
    product = await new_product(api, admin_token, read_side, stock=10)
    workers = [worker for worker in read_side.workers if worker.returncode is None]
    assert workers

    async with subscriber(api, protocol, customer.token) as ws:
        for worker in workers:  # hold the projection back for a moment
            worker.send_signal(signal.SIGSTOP)
        try:
            known = await place_ok(api, customer.token, product["id"])
            op_id = await ws.subscribe(MY_ORDERS_UPDATED, {"after": known["consistencyToken"]})
            await ws.sync()
            after = await place_ok(api, customer.token, product["id"])
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGCONT)
        pushed = order_state(await ws.data(op_id))
        assert pushed[0] != known["order"]["id"], "the order the token covers was sent again"
        assert pushed == (after["order"]["id"], "PLACED", 1)
