"""Every Query field of the contract over HTTP, with its permissions, read from the projections.

Each test writes through the API, waits (on the worker's notifications) until the session's
`shop worker` has projected its last write, then reads without a consistency token: what
it sees is the read model. The database is shared by the whole session, so listings are
checked for what this test wrote (and their order), and the dashboard by its deltas.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from tests.conftest import Api, Customer, sign_up
from tests.pipeline import ALL, Pipeline
from tests.support import (
    CANCEL_ORDER,
    CREATE_PRODUCT,
    error_codes,
    place_order,
    token_position,
    unique,
    until,
    without_cost,
)

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"

PRODUCT_FIELDS = "id sku name description priceCents stock inStock unitsSold version updatedAt"
ORDER_FIELDS = """id status itemCount totalCents placedAt updatedAt version
  customer { id name email }
  lines { productId sku name unitPriceCents quantity lineTotalCents }"""

NODE = """query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Order { status totalCents customer { id } }
    ... on Product { sku name stock }
    ... on Customer { email name role }
  }
}"""
ME = "{ me { id email name role orderCount lifetimeValueCents } }"
PRODUCT = f"query($id: ID!) {{ product(id: $id) {{ {PRODUCT_FIELDS} }} }}"
PRODUCTS = f"""query($first: Int, $after: String, $search: String, $inStock: Boolean) {{
  products(first: $first, after: $after, search: $search, inStock: $inStock) {{
    edges {{ cursor node {{ {PRODUCT_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
ORDER = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
MY_ORDERS = f"""query($first: Int, $after: String, $status: OrderStatus) {{
  myOrders(first: $first, after: $after, status: $status) {{
    edges {{ cursor node {{ {ORDER_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
DASHBOARD = """{
  salesDashboard {
    revenueCents orderCount cancelledCount averageOrderCents updatedAt
    daily { date revenueCents orderCount }
    topProducts(limit: 100) { productId name unitsSold revenueCents }
  }
}"""
INVENTORY = f"""query($below: Int, $first: Int, $after: String) {{
  inventory(lowStockBelow: $below, first: $first, after: $after) {{
    edges {{ cursor node {{ {PRODUCT_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
PROJECTIONS = "{ projections { name position headPosition lagEvents lagMs state lastError } }"

LAG_WATCH_S = 2.5


# --- helpers -------------------------------------------------------------------------


async def make_product(
    api: Api,
    admin_token: str,
    name: str,
    *,
    stock: int = 100,
    price: int = 1000,
    description: str = "",
) -> dict[str, Any]:
    """A product created through the API, with its consistency token under "token"."""
    data = await api.client.data(
        CREATE_PRODUCT,
        {
            "input": {
                "sku": unique("SKU"),
                "name": name,
                "description": description,
                "priceCents": price,
                "stock": stock,
            }
        },
        admin_token,
    )
    result = data["createProduct"]
    assert result["__typename"] == "ProductSuccess", result
    product: dict[str, Any] = result["product"]
    return product | {"token": result["consistencyToken"]}


async def place(api: Api, token: str, lines: list[tuple[str, int]]) -> dict[str, Any]:
    """A placed order (as the mutation returned it), with its consistency token under "token"."""
    result = await place_order(api.client, token, lines)
    assert result["__typename"] == "OrderSuccess", result
    order: dict[str, Any] = result["order"]
    return order | {"token": result["consistencyToken"]}


async def cancel(api: Api, token: str, order_id: str) -> dict[str, Any]:
    data = await api.client.data(CANCEL_ORDER, {"input": {"orderId": order_id}}, token)
    result = data["cancelOrder"]
    assert result["__typename"] == "OrderSuccess", result
    order: dict[str, Any] = result["order"]
    return order | {"token": result["consistencyToken"]}


async def projected(read_side: Pipeline, token: str) -> None:
    """Returns once every projection has applied the write that issued `token`."""
    await read_side.wait_until_projected(token_position(token))


def stripped(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "token"}


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def walk(
    api: Api, query: str, field: str, variables: dict[str, Any], token: str | None
) -> list[dict[str, Any]]:
    """Every node of a connection, page by page."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        data = await api.client.data(query, variables | {"after": after}, token)
        page = data[field]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]


# --- node, me, product ---------------------------------------------------------------


async def test_node_finds_orders_products_and_customers_for_those_who_may_see_them(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    stranger = await sign_up(api, "Sam Stranger")
    product = await make_product(api, admin_token, "Node mug", stock=7)
    order = await place(api, customer.token, [(product["id"], 2)])
    await projected(read_side, order["token"])

    async def node(node_id: str, token: str | None) -> dict[str, Any] | None:
        data = await api.client.data(NODE, {"id": node_id}, token)
        found: dict[str, Any] | None = data["node"]
        return found

    as_order = {
        "__typename": "Order",
        "id": order["id"],
        "status": "PLACED",
        "totalCents": 2000,
        "customer": {"id": customer.id},
    }
    assert await node(order["id"], customer.token) == as_order
    assert await node(order["id"], admin_token) == as_order
    assert await node(order["id"], stranger.token) is None
    assert await node(order["id"], None) is None

    as_product = {
        "__typename": "Product",
        "id": product["id"],
        "sku": product["sku"],
        "name": "Node mug",
        "stock": 5,
    }
    for token in (None, customer.token, admin_token):
        assert await node(product["id"], token) == as_product

    as_customer = {
        "__typename": "Customer",
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "role": "CUSTOMER",
    }
    assert await node(customer.id, customer.token) == as_customer
    assert await node(customer.id.upper(), customer.token) == as_customer
    assert await node(customer.id, admin_token) == as_customer
    assert await node(customer.id, stranger.token) is None
    assert await node(customer.id, None) is None

    for nothing in (UNKNOWN_ID, "not-a-uuid", ""):
        assert await node(nothing, admin_token) is None


async def test_me_is_the_signed_in_customer_with_live_order_statistics(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    anonymous = await api.client.data(ME)
    assert anonymous == {"me": None}

    product = await make_product(api, admin_token, "Me mug", price=400)
    await place(api, customer.token, [(product["id"], 2)])
    dropped = await place(api, customer.token, [(product["id"], 5)])
    cancelled = await cancel(api, customer.token, dropped["id"])
    await projected(read_side, cancelled["token"])

    data = await api.client.data(ME, token=customer.token)

    assert data["me"] == {
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "role": "CUSTOMER",
        "orderCount": 1,
        "lifetimeValueCents": 800,
    }
    admin = await api.client.data(ME, token=admin_token)
    assert admin["me"]["role"] == "ADMIN"


async def test_product_by_id_for_anyone_and_null_for_an_unknown_id(
    api: Api, admin_token: str, read_side: Pipeline
) -> None:
    product = await make_product(
        api, admin_token, "Lonely teapot", stock=3, price=2599, description="Holds one cup."
    )
    await projected(read_side, product["token"])

    data = await api.client.data(PRODUCT, {"id": product["id"]})

    assert data["product"] == stripped(product)
    assert data["product"]["inStock"] is True
    for nothing in (UNKNOWN_ID, "not-a-uuid"):
        assert await api.client.data(PRODUCT, {"id": nothing}) == {"product": None}


# --- products ------------------------------------------------------------------------


async def test_products_search_in_stock_and_paging(
    api: Api, admin_token: str, read_side: Pipeline
) -> None:
    word = unique("zorb").replace("-", "")
    made = [
        await make_product(api, admin_token, f"{word} {suffix}", stock=stock)
        for suffix, stock in (("c", 4), ("a", 0), ("b", 9))
    ]
    described = await make_product(
        api, admin_token, f"Plain {unique('name')}", description=f"Mentions {word} once."
    )
    other = await make_product(api, admin_token, f"Other {unique('name')}")
    await projected(read_side, other["token"])

    found = await walk(api, PRODUCTS, "products", {"search": word, "first": 100}, None)
    # By name, then id: the three named ones, and the one whose description matches.
    expected = sorted([*made, described], key=lambda p: (p["name"], p["id"]))
    assert found == [stripped(p) for p in expected]

    in_stock = await walk(api, PRODUCTS, "products", {"search": word, "inStock": True}, None)
    assert [p["id"] for p in in_stock] == [p["id"] for p in expected if p["stock"] > 0]
    assert len(in_stock) == 3
    assert all(p["inStock"] and p["stock"] > 0 for p in in_stock)
    sold_out = await walk(api, PRODUCTS, "products", {"search": word, "inStock": False}, None)
    assert [(p["name"], p["stock"], p["inStock"]) for p in sold_out] == [(f"{word} a", 0, False)]

    first = await api.client.data(PRODUCTS, {"search": word, "first": 2})
    page = first["products"]
    assert [edge["node"]["id"] for edge in page["edges"]] == [p["id"] for p in expected[:2]]
    assert page["pageInfo"] == {"hasNextPage": True, "endCursor": page["edges"][1]["cursor"]}
    rest = await api.client.data(
        PRODUCTS, {"search": word, "first": 2, "after": page["pageInfo"]["endCursor"]}
    )
    assert [edge["node"]["id"] for edge in rest["products"]["edges"]] == [
        p["id"] for p in expected[2:]
    ]
    assert rest["products"]["pageInfo"]["hasNextPage"] is False

    # The default page is 20; without a search the whole catalog is listed by name.
    everything = await api.client.data(PRODUCTS)
    names = [edge["node"]["name"] for edge in everything["products"]["edges"]]
    assert 0 < len(names) <= 20
    assert names == sorted(names)


async def test_products_refuse_a_page_above_100_and_a_bad_cursor(api: Api) -> None:
    for variables in (
        {"first": 101},
        {"first": 0},
        {"first": -1},
        {"after": "not a cursor!"},
        {"after": "eyJrIjoiPyJ9"},  # base64 JSON, but not a cursor
    ):
        body = await api.client.gql(PRODUCTS, variables)
        assert error_codes(body) == ["BAD_USER_INPUT"], (variables, body)
        assert body["data"] is None
    ok = await api.client.data(PRODUCTS, {"first": 100})
    assert len(ok["products"]["edges"]) <= 100


async def test_a_cursor_of_another_listing_is_bad_user_input(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await make_product(api, admin_token, "Cursor mug")
    await place(api, customer.token, [(product["id"], 1)])
    last = await place(api, customer.token, [(product["id"], 1)])
    await projected(read_side, last["token"])
    orders_page = await api.client.data(MY_ORDERS, {"first": 1}, customer.token)
    order_cursor = orders_page["myOrders"]["pageInfo"]["endCursor"]
    products_page = await api.client.data(PRODUCTS, {"first": 1})
    product_cursor = products_page["products"]["pageInfo"]["endCursor"]

    wrong_way = await api.client.gql(PRODUCTS, {"after": order_cursor})
    other_way = await api.client.gql(MY_ORDERS, {"after": product_cursor}, customer.token)
    inventory = await api.client.gql(INVENTORY, {"after": product_cursor}, admin_token)

    assert error_codes(wrong_way) == ["BAD_USER_INPUT"]
    assert error_codes(other_way) == ["BAD_USER_INPUT"]
    assert error_codes(inventory) == ["BAD_USER_INPUT"]


# --- order and myOrders --------------------------------------------------------------


async def test_order_for_its_owner_and_admins_only(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    stranger = await sign_up(api, "Sam Stranger")
    mug = await make_product(api, admin_token, "Order mug", price=1250)
    tea = await make_product(api, admin_token, "Order tea", price=499)
    order = await place(api, customer.token, [(mug["id"], 2), (tea["id"], 3)])
    await projected(read_side, order["token"])

    as_owner = await api.client.data(ORDER, {"id": order["id"]}, customer.token)
    as_admin = await api.client.data(ORDER, {"id": order["id"]}, admin_token)
    as_stranger = await api.client.gql(ORDER, {"id": order["id"]}, stranger.token)
    as_nobody = await api.client.gql(ORDER, {"id": order["id"]})

    # The projected document is exactly what the mutation returned from the write store.
    assert as_owner["order"] == stripped(order)
    assert as_owner["order"]["customer"] == {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
    }
    assert as_admin["order"] == stripped(order)
    # Another customer's order reads exactly as an unknown one: no existence oracle.
    assert without_cost(as_stranger) == {"data": {"order": None}}
    assert error_codes(as_nobody) == ["UNAUTHENTICATED"]
    assert as_nobody["data"] == {"order": None}
    for nothing in (UNKNOWN_ID, "not-a-uuid", order["id"] + "0"):
        assert await api.client.data(ORDER, {"id": nothing}, customer.token) == {"order": None}
        assert await api.client.data(ORDER, {"id": nothing}, stranger.token) == {"order": None}


async def test_my_orders_newest_first_with_a_status_filter_and_paging(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    other = await sign_up(api, "Olga Other")
    product = await make_product(api, admin_token, "History mug", price=100)
    placed = [await place(api, customer.token, [(product["id"], n)]) for n in range(1, 6)]
    await place(api, other.token, [(product["id"], 9)])
    cancelled = await cancel(api, customer.token, placed[1]["id"])
    shipped = await api.client.data(
        "mutation($id: ID!) { shipOrder(input: {orderId: $id}) { __typename"
        " ... on OrderSuccess { consistencyToken } } }",
        {"id": placed[3]["id"]},
        admin_token,
    )
    assert shipped["shipOrder"]["__typename"] == "OrderSuccess"
    await projected(read_side, shipped["shipOrder"]["consistencyToken"])
    newest_first = [order["id"] for order in reversed(placed)]

    everything = await walk(api, MY_ORDERS, "myOrders", {"first": 2}, customer.token)

    assert [order["id"] for order in everything] == newest_first
    assert {order["customer"]["id"] for order in everything} == {customer.id}
    placed_at = [moment(order["placedAt"]) for order in everything]
    assert placed_at == sorted(placed_at, reverse=True)
    by_id = {order["id"]: order for order in everything}
    assert by_id[cancelled["id"]]["status"] == "CANCELLED"
    assert by_id[cancelled["id"]]["version"] == 2
    assert by_id[placed[0]["id"]] == stripped(placed[0])

    statuses = {}
    for status in ("PLACED", "SHIPPED", "CANCELLED"):
        of_status = await walk(api, MY_ORDERS, "myOrders", {"status": status}, customer.token)
        assert {order["status"] for order in of_status} <= {status}
        statuses[status] = [order["id"] for order in of_status]
    assert statuses == {
        "PLACED": [placed[4]["id"], placed[2]["id"], placed[0]["id"]],
        "SHIPPED": [placed[3]["id"]],
        "CANCELLED": [placed[1]["id"]],
    }

    page = await api.client.data(MY_ORDERS, {"first": 3}, customer.token)
    assert [edge["node"]["id"] for edge in page["myOrders"]["edges"]] == newest_first[:3]
    assert page["myOrders"]["pageInfo"]["hasNextPage"] is True
    page = await api.client.data(
        MY_ORDERS,
        {"first": 3, "after": page["myOrders"]["pageInfo"]["endCursor"]},
        customer.token,
    )
    assert [edge["node"]["id"] for edge in page["myOrders"]["edges"]] == newest_first[3:]
    assert page["myOrders"]["pageInfo"]["hasNextPage"] is False

    nobody = await api.client.gql(MY_ORDERS)
    assert error_codes(nobody) == ["UNAUTHENTICATED"]
    too_many = await api.client.gql(MY_ORDERS, {"first": 101}, customer.token)
    assert error_codes(too_many) == ["BAD_USER_INPUT"]
    bad_cursor = await api.client.gql(MY_ORDERS, {"after": "garbage"}, customer.token)
    assert error_codes(bad_cursor) == ["BAD_USER_INPUT"]


# --- admin queries -------------------------------------------------------------------


async def dashboard(api: Api, admin_token: str) -> dict[str, Any]:
    data = await api.client.data(DASHBOARD, token=admin_token)
    board: dict[str, Any] = data["salesDashboard"]
    return board


async def test_sales_dashboard_counts_placed_orders_net_of_cancelled_ones(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    a = await make_product(api, admin_token, "Dashboard A", price=1000)
    b = await make_product(api, admin_token, "Dashboard B", price=250)
    c = await make_product(api, admin_token, "Dashboard C", price=700)
    await projected(read_side, c["token"])
    before = await dashboard(api, admin_token)

    first = await place(api, customer.token, [(a["id"], 2), (b["id"], 4)])  # 3000
    second = await place(api, customer.token, [(b["id"], 1)])  # 250
    third = await place(api, customer.token, [(c["id"], 3)])  # 2100, then cancelled
    cancelled = await cancel(api, customer.token, third["id"])
    await projected(read_side, cancelled["token"])
    after = await dashboard(api, admin_token)

    assert after["revenueCents"] - before["revenueCents"] == 3250
    assert after["orderCount"] - before["orderCount"] == 2
    assert after["cancelledCount"] - before["cancelledCount"] == 1
    assert after["averageOrderCents"] == after["revenueCents"] // after["orderCount"]
    # Stored with millisecond precision.
    assert moment(after["updatedAt"]) >= moment(cancelled["updatedAt"]) - timedelta(milliseconds=1)

    expected_days: Counter[str] = Counter()
    expected_orders: Counter[str] = Counter()
    for order in (first, second):
        day = moment(order["placedAt"]).date().isoformat()
        expected_days[day] += order["totalCents"]
        expected_orders[day] += 1
    day_before = {d["date"]: d for d in before["daily"]}
    day_after = {d["date"]: d for d in after["daily"]}
    for day, revenue in expected_days.items():
        old = day_before.get(day, {"revenueCents": 0, "orderCount": 0})
        assert day_after[day]["revenueCents"] - old["revenueCents"] == revenue
        assert day_after[day]["orderCount"] - old["orderCount"] == expected_orders[day]
    dates = [d["date"] for d in after["daily"]]
    assert dates == sorted(dates, reverse=True)
    assert 0 < len(dates) <= 30

    top = {p["productId"]: p for p in after["topProducts"]}
    assert top[a["id"]] == {
        "productId": a["id"],
        "name": "Dashboard A",
        "unitsSold": 2,
        "revenueCents": 2000,
    }
    assert top[b["id"]] == {
        "productId": b["id"],
        "name": "Dashboard B",
        "unitsSold": 5,
        "revenueCents": 1250,
    }
    assert c["id"] not in top  # every order of it was cancelled
    ranking = [(-p["unitsSold"], -p["revenueCents"], p["productId"]) for p in after["topProducts"]]
    assert ranking == sorted(ranking)

    limited = await api.client.data(
        "{ salesDashboard { daily(days: 1) { date } topProducts(limit: 1) { productId } } }",
        token=admin_token,
    )
    assert limited["salesDashboard"]["daily"] == [{"date": dates[0]}]
    assert limited["salesDashboard"]["topProducts"] == [
        {"productId": after["topProducts"][0]["productId"]}
    ]


async def test_sales_dashboard_is_for_admins_and_checks_its_arguments(
    api: Api, admin_token: str, customer: Customer
) -> None:
    assert error_codes(await api.client.gql(DASHBOARD, token=customer.token)) == ["FORBIDDEN"]
    assert error_codes(await api.client.gql(DASHBOARD)) == ["UNAUTHENTICATED"]
    for arguments in ("daily(days: 0) { date }", "topProducts(limit: 101) { name }"):
        body = await api.client.gql(f"{{ salesDashboard {{ {arguments} }} }}", token=admin_token)
        assert error_codes(body) == ["BAD_USER_INPUT"], body


async def test_inventory_lists_low_stock_lowest_first_for_admins(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    low = [await make_product(api, admin_token, f"Low {stock}", stock=stock) for stock in (2, 0, 1)]
    three = await make_product(api, admin_token, "Three left", stock=3)
    await projected(read_side, three["token"])

    below_three = await walk(api, INVENTORY, "inventory", {"below": 3, "first": 100}, admin_token)
    ids = [p["id"] for p in below_three]
    assert all(p["stock"] < 3 for p in below_three)
    assert [(p["stock"], p["id"]) for p in below_three] == sorted(
        (p["stock"], p["id"]) for p in below_three
    )
    assert {p["id"] for p in low} <= set(ids)
    assert len(ids) == len(set(ids))
    assert three["id"] not in ids

    by_default = await walk(api, INVENTORY, "inventory", {"first": 100}, admin_token)
    assert three["id"] in {p["id"] for p in by_default}  # lowStockBelow defaults to 5
    assert all(p["stock"] < 5 for p in by_default)
    page = await api.client.data(INVENTORY, {"below": 3, "first": 1}, admin_token)
    assert len(page["inventory"]["edges"]) == 1

    assert error_codes(await api.client.gql(INVENTORY, {}, customer.token)) == ["FORBIDDEN"]
    assert error_codes(await api.client.gql(INVENTORY, {})) == ["UNAUTHENTICATED"]
    too_many = await api.client.gql(INVENTORY, {"first": 101}, admin_token)
    assert error_codes(too_many) == ["BAD_USER_INPUT"]


async def test_projections_report_each_projections_status_to_admins(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await make_product(api, admin_token, "Status mug")
    await projected(read_side, product["token"])
    position = token_position(product["token"])

    async def statuses() -> dict[str, dict[str, Any]]:
        data = await api.client.data(PROJECTIONS, token=admin_token)
        return {status["name"]: status for status in data["projections"]}

    # Nothing is written after the product, and every projection reached it: the worker's
    # next lag recording (once a second) finds nothing left. Until then a status may show
    # the lag recorded just before its last batch.
    settled = await until(
        statuses,
        lambda found: set(found) >= set(ALL) and all(found[name]["lagEvents"] == 0 for name in ALL),
    )
    for name in ALL:
        status = settled[name]
        # The product's event is the log's head, and each projection's checkpoint.
        assert (int(status["position"]), int(status["headPosition"])) == (position, position)
        assert (status["lagEvents"], status["lagMs"]) == (0, 0), status
        # The session's worker holds every projection's lease and has nothing parked.
        assert status["state"] == "live", status
        assert status["lastError"] is None, status

    assert error_codes(await api.client.gql(PROJECTIONS, token=customer.token)) == ["FORBIDDEN"]
    assert error_codes(await api.client.gql(PROJECTIONS)) == ["UNAUTHENTICATED"]


async def test_projection_lag_is_never_negative(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await make_product(api, admin_token, "Lag mug", stock=1000, price=10)
    lags: list[int] = []
    # Writes and reads across a few of the worker's lag recordings (one a second).
    deadline = time.monotonic() + LAG_WATCH_S
    while time.monotonic() < deadline:
        await place(api, customer.token, [(product["id"], 1)])
        data = await api.client.data(PROJECTIONS, token=admin_token)
        lags += [status["lagMs"] for status in data["projections"]]
    assert min(lags) >= 0, sorted(lags)[:5]


# --- paging while documents are added ------------------------------------------------


async def test_walking_my_orders_while_orders_are_placed_sees_each_order_once(
    api: Api, admin_token: str, customer: Customer, read_side: Pipeline
) -> None:
    product = await make_product(api, admin_token, "Walk mug", stock=1000, price=10)
    existing = [await place(api, customer.token, [(product["id"], 1)]) for _ in range(7)]
    await projected(read_side, existing[-1]["token"])

    seen: list[str] = []
    after = None
    added = 0
    while True:
        data = await api.client.data(MY_ORDERS, {"first": 2, "after": after}, customer.token)
        page = data["myOrders"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        # A new order between pages, visible in the read model before the next page.
        new = await place(api, customer.token, [(product["id"], 1)])
        await projected(read_side, new["token"])
        added += 1

    assert added == 3
    # New orders are newer than the cursor, so they land before it: never seen.
    assert seen == [order["id"] for order in reversed(existing)]
    everything = await walk(api, MY_ORDERS, "myOrders", {"first": 100}, customer.token)
    assert len(everything) == 7 + added


async def test_walking_products_while_products_are_added_sees_each_product_once(
    api: Api, admin_token: str, read_side: Pipeline
) -> None:
    word = unique("walk").replace("-", "")
    # Names repeat, so pages end between products of the same name (the id decides).
    existing = [await make_product(api, admin_token, f"{word} m{i // 3}") for i in range(7)]
    await projected(read_side, existing[-1]["token"])

    def key(product: dict[str, Any]) -> tuple[str, str]:
        return (product["name"], product["id"])

    seen: list[dict[str, Any]] = []
    after_cursor: list[dict[str, Any]] = []  # added products that sort after the cursor
    after = None
    while True:
        data = await api.client.data(PRODUCTS, {"search": word, "first": 2, "after": after})
        page = data["products"]
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        last = page["edges"][-1]["node"]
        if len(seen) > 6:
            continue  # the walk has to end: add only during the first three turns
        # Before everything, after everything, and on the cursor's own name (the id
        # decides which side of the cursor it lands).
        added = [
            await make_product(api, admin_token, f"{word} a{len(seen)}"),
            await make_product(api, admin_token, f"{word} z{len(seen)}"),
            await make_product(api, admin_token, last["name"]),
        ]
        await projected(read_side, added[-1]["token"])
        after_cursor += [p for p in added if key(p) > key(last)]

    names = [key(p) for p in seen]
    assert names == sorted(names)
    seen_ids = Counter(p["id"] for p in seen)
    assert all(seen_ids[p["id"]] == 1 for p in existing)
    assert max(seen_ids.values()) == 1
    assert [p["id"] for p in seen] == [p["id"] for p in sorted([*existing, *after_cursor], key=key)]
