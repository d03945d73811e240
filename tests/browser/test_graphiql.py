"""GraphiQL as a newcomer opens it, in headless Chromium with no network but loopback.

The page renders its editor from the app's own assets (no request leaves 127.0.0.1), its
Content-Security-Policy holds with nothing refused, a query typed in it runs and shows its
result, the headers pane's token reaches the server over HTTP and the websocket, and a
subscription started from it delivers. Screenshots stay in tests/browser/screenshots/.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from tests.browser.cdp import Page, chromium_page
from tests.conftest import PASSWORD, Api
from tests.pipeline import Pipeline
from tests.support import SIGN_UP, new_product, place_order, unique

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).parent / "screenshots"
EDITOR = "!!document.querySelector('.graphiql-query-editor .CodeMirror')"
RESULT = "document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue()"
RUN = "document.querySelector('.graphiql-execute-button').click()"


def graphiql_url(api: Api, query: str, headers: dict[str, str] | None = None) -> str:
    params = {"query": query} | ({"headers": json.dumps(headers)} if headers else {})
    return f"{api.base_url}/graphql#{urlencode(params)}"


def assert_stayed_home(page: Page, api: Api) -> None:
    """Every request the page made went to the API's own origin (or was inline data)."""
    home = urlsplit(api.base_url).netloc
    away = [
        url
        for url in page.requests
        if not url.startswith(("data:", "about:")) and urlsplit(url).netloc != home
    ]
    assert away == [], away


async def open_graphiql(page: Page, url: str) -> None:
    await page.open(url)
    try:
        await page.wait_for(EDITOR, "the query editor")
    except AssertionError as failed:
        raise AssertionError(
            f"{failed}\nconsole: {page.console}\nrequests: {page.requests}"
        ) from None


async def run_and_read(page: Page, expected: str, what: str) -> str:
    """Press the run button; the result pane's text once it contains `expected`."""
    await page.evaluate(RUN)
    try:
        text: str = await page.wait_for(
            f"(({RESULT}) || '').includes({json.dumps(expected)}) && ({RESULT})", what
        )
    except AssertionError as failed:
        shown = await page.evaluate(RESULT)
        raise AssertionError(f"{failed}\nresult pane: {shown}\nconsole: {page.console}") from None
    return text


async def sign_up(api: Api) -> tuple[str, str, str]:
    """A new customer: (email, bearer token, consistency token of the sign-up)."""
    email = f"{unique('graphiql')}@example.com"
    data = await api.client.data(
        SIGN_UP, {"input": {"email": email, "name": "Gil Graph", "password": PASSWORD}}
    )
    result = data["signUp"]
    assert result["__typename"] == "AuthSuccess", result
    return email, result["token"], result["consistencyToken"]


async def test_graphiql_renders_offline_and_runs_a_query_with_the_headers_pane(
    api: Api,
) -> None:
    email, token, written = await sign_up(api)
    # With the sign-up's consistency token, `me` reads the customer it just wrote (no
    # worker runs here: the write store answers).
    headers = {"Authorization": f"Bearer {token}", "X-Consistency-Token": written}
    async with chromium_page() as page:
        await open_graphiql(page, graphiql_url(api, "{ me { email } }", headers))
        # The explorer plugin and the docs are there, from the same assets.
        assert await page.evaluate("!!document.querySelector('[aria-label*=\"Explorer\"]')")
        result = json.loads(await run_and_read(page, email, "the `me` result"))
        shot = await page.screenshot(SCREENSHOTS / "graphiql-query.png")
        print(f"screenshot: {shot}")
        assert result["data"] == {"me": {"email": email}}, result
        assert_stayed_home(page, api)
        assert page.console == [], page.console  # nothing refused by the CSP, no error


async def test_a_subscription_from_graphiql_gets_its_token_and_delivers(
    api: Api, admin_token: str, read_side: Pipeline
) -> None:
    """myOrdersUpdated needs a customer: the headers pane's Authorization reaches the
    websocket's connection_init, and afterToken replays the order placed before."""
    _, token, before = await sign_up(api)
    product = await new_product(api.client, admin_token, stock=3)
    placed = await place_order(api.client, token, [(product["id"], 1)])
    assert placed["__typename"] == "OrderSuccess", placed
    order_id = placed["order"]["id"]
    query = f'subscription {{ myOrdersUpdated(afterToken: "{before}") {{ id status }} }}'
    async with chromium_page() as page:
        await open_graphiql(page, graphiql_url(api, query, {"Authorization": f"Bearer {token}"}))
        text = await run_and_read(page, order_id, "the replayed order")
        await page.screenshot(SCREENSHOTS / "graphiql-subscription.png")
        pushed = json.loads(text)
        assert pushed["data"] == {"myOrdersUpdated": {"id": order_id, "status": "PLACED"}}, pushed
        assert any(url.startswith("ws://") for url in page.requests), page.requests
        assert_stayed_home(page, api)
        assert page.console == [], page.console
