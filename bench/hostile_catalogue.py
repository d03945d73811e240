"""B7's catalogue: the hostile requests of issue 8 and the heaviest honest ones.

Each entry is one HTTP request the load sends again and again. `expect` says whether a
hardened API must accept or refuse it; the bench reads what the server actually did from
each response (`outcome`), so an entry that slips through shows in the report instead of
being measured as something it is not.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACCEPTED, REFUSED = "accepted", "refused"
ORDER_FIELDS = """
    id status itemCount totalCents placedAt updatedAt version
    customer { id name email }
    lines { productId sku name quantity unitPriceCents lineTotalCents }
"""
ORDER_QUERY = f"query Order($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
SEARCH = "query S($q: String) { products(search: $q) { edges { node { id } } } }"
LOG_IN = (
    "mutation LogIn($input: LogInInput!) { logIn(input: $input) { __typename "
    "... on AuthSuccess { token } } }"
)
SIGN_UP = (
    "mutation SignUp($input: SignUpInput!) { signUp(input: $input) { __typename "
    "... on AuthSuccess { token } } }"
)
_addresses = itertools.count(1)


@dataclass(frozen=True)
class Target:
    """What the catalogue's requests point at: seeded ids and tokens."""

    order_id: str
    customer_token: str
    admin_token: str


@dataclass(frozen=True)
class Entry:
    name: str
    expect: str
    # A fresh request body and headers each time (some must differ per request).
    request: Callable[[Target], tuple[dict[str, Any], dict[str, str]]]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _fresh_client() -> dict[str, str]:
    """A client address of its own (uvicorn takes X-Forwarded-For from loopback proxies), so
    per-address throttles see a new client; only a header, no traffic goes anywhere."""
    n = next(_addresses)
    return {"X-Forwarded-For": f"198.18.{n // 250 % 250}.{n % 250 + 1}"}


def doubling_fragments(levels: int) -> str:
    """`{ ...G0 }` where each fragment spreads the next twice: 2^levels fields expanded."""
    fragments = [f"fragment G{n} on Query {{ ...G{n + 1} ...G{n + 1} }}" for n in range(levels)]
    return "\n".join(["{ ...G0 }", *fragments, f"fragment G{levels} on Query {{ apiVersion }}"])


def deep_introspection(depth: int) -> str:
    inner = "name"
    for _ in range(depth):
        inner = f"ofType {{ {inner} }}"
    return f'{{ __type(name: "Order") {{ fields {{ type {{ {inner} }} }} }} }}'


def aliased_histories(count: int, first: int) -> str:
    body = " ".join(
        f"h{n}: myOrders(first: {first}) {{ edges {{ node {{ {ORDER_FIELDS} }} }} }}"
        for n in range(count)
    )
    return f"{{ {body} }}"


def _query(text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"query": text, "variables": variables or {}}


def _unsigned_token(position: int) -> str:
    """A consistency token in the unsigned format the API issued before issue 8."""
    return base64.urlsafe_b64encode(f"pos:{position}".encode()).decode().rstrip("=")


def _words(count: int) -> str:
    return " ".join(f"word{n}" for n in range(count))


CATALOGUE: tuple[Entry, ...] = (
    # --- accepted: the heaviest requests an honest client may send ---
    Entry("order(id), whole order (the plain query)", ACCEPTED,
          lambda t: (_query(ORDER_QUERY, {"id": t.order_id}), _bearer(t.customer_token))),
    Entry("myOrders(first: 100), whole orders", ACCEPTED,
          lambda t: (_query(aliased_histories(1, 100)), _bearer(t.customer_token))),
    Entry("15 aliases of myOrders(first: 7), whole orders", ACCEPTED,
          lambda t: (_query(aliased_histories(15, 7)), _bearer(t.customer_token))),
    Entry("15 aliases of order(id)", ACCEPTED,
          lambda t: (_query("query Orders($id: ID!) { " + " ".join(
              f"o{n}: order(id: $id) {{ {ORDER_FIELDS} }}" for n in range(15)) + " }",
              {"id": t.order_id}), _bearer(t.customer_token))),
    Entry("salesDashboard (admin)", ACCEPTED,
          lambda t: (_query("{ salesDashboard { revenueCents orderCount daily(days: 90) "
                            "{ date revenueCents orderCount } topProducts(limit: 50) "
                            "{ productId name unitsSold revenueCents } } }"),
                     _bearer(t.admin_token))),
    Entry("products(search: 20 words)", ACCEPTED,
          lambda t: (_query("query S($q: String) { products(first: 100, search: $q) "
                            "{ edges { node { id name stock } } } }", {"q": _words(20)}), {})),
    Entry("logIn, unknown account, new client (one argon2 verify)", ACCEPTED,
          lambda t: (_query(LOG_IN, {"input": {"email": f"nobody{next(_addresses)}@example.com",
                                               "password": "wrong-password-123"}}),
                     _fresh_client())),
    Entry("signUp, new client (one argon2 hash and a write)", ACCEPTED,
          lambda t: (_query(SIGN_UP, {"input": {"email": f"b7-{next(_addresses)}@example.com",
                                                "name": "B7", "password": "b7-password-123"}}),
                     _fresh_client())),
    # --- refused: each must cost about what a plain query costs ---
    Entry("fragment doubling, 20 levels", REFUSED,
          lambda t: (_query(doubling_fragments(20)), {})),
    Entry("fragment doubling, 40 levels", REFUSED,
          lambda t: (_query(doubling_fragments(40)), {})),
    Entry("fragment doubling, 200 levels", REFUSED,
          lambda t: (_query(doubling_fragments(200)), {})),
    Entry("deep introspection, 30 levels", REFUSED,
          lambda t: (_query(deep_introspection(30)), {})),
    Entry("16 aliases", REFUSED,
          lambda t: (_query("{ " + " ".join(f"a{n}: apiVersion" for n in range(16)) + " }"), {})),
    Entry("15 aliases of myOrders(first: 100) with lines", REFUSED,
          lambda t: (_query(aliased_histories(15, 100)), _bearer(t.customer_token))),
    Entry("60 directives on one field", REFUSED,
          lambda t: (_query("{ apiVersion " + "@include(if: true) " * 60 + "}"), {})),
    Entry("33,000 characters", REFUSED,
          lambda t: (_query("{ " + "apiVersion " * 3000 + "}"), {})),
    Entry("7,000 tokens within the character limit", REFUSED,
          lambda t: (_query("{ " + "a " * 7000 + "}"), {})),
    Entry("two operations, no operationName", REFUSED,
          lambda t: (_query("query A { apiVersion } query B { apiVersion }"), {})),
    Entry("products(search: 5,000 words)", REFUSED,
          lambda t: (_query(SEARCH, {"q": _words(5000)}), {})),
    Entry("forged future consistency token, products(search: 20 words)", REFUSED,
          lambda t: (_query(SEARCH, {"q": _words(20)}),
                     {"X-Consistency-Token": _unsigned_token(10**12)})),
    Entry("logIn over the throttle (one account, one client)", REFUSED,
          lambda t: (_query(LOG_IN, {"input": {"email": "target@example.com",
                                               "password": "guess-password-123"}}),
                     {"X-Forwarded-For": "198.19.0.1"})),
)  # fmt: skip


def outcome(status: int, body: Any) -> str:
    """`accepted`, or `refused: CODE` read from the response the way a client reads it."""
    if not isinstance(body, dict):
        return f"{REFUSED}: HTTP {status}"
    codes = [
        str((error.get("extensions") or {}).get("code", "no code"))
        for error in body.get("errors") or []
        if isinstance(error, dict)
    ]
    data = body.get("data")
    values = list(data.values()) if isinstance(data, dict) else []
    typenames = [v.get("__typename") for v in values if isinstance(v, dict)]
    if refusal := next((name for name in typenames if name == "RateLimitedError"), None):
        return f"{REFUSED}: {refusal}"
    if codes and (data is None or all(v is None for v in values)):
        return f"{REFUSED}: {', '.join(sorted(set(codes)))}"
    if status >= 400:
        return f"{REFUSED}: HTTP {status}"
    if codes:
        return f"{ACCEPTED} with errors: {', '.join(sorted(set(codes)))}"
    return ACCEPTED
