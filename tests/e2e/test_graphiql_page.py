"""GraphiQL's page and assets over real HTTP: served by the app, strictly fenced, cached
for good by version, and absent where GraphiQL is off (production's default)."""

from __future__ import annotations

import gzip
import re

from app.asgi import create_app
from app.graphiql import CONTENT_SECURITY_POLICY, IMMUTABLE
from app.settings import Settings
from tests.conftest import Api
from tests.support import free_port, serving

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_the_page_carries_a_strict_policy_and_every_asset_it_names_is_served(
    api: Api,
) -> None:
    http = api.client.http
    response = await http.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    urls = re.findall(r'(?:src|href)="(/graphiql/assets/[^"]+)"', response.text)
    assert len(urls) == 8, urls
    for url in urls:
        asset = await http.get(url, headers={"Accept-Encoding": "identity"})
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == IMMUTABLE, url
        kind = "text/javascript" if url.split("?")[0].endswith(".js") else "text/css"
        assert asset.headers["content-type"].startswith(kind), url
        assert asset.content, url


async def test_assets_are_compressed_revalidated_and_only_ever_the_listed_files(
    api: Api,
) -> None:
    http = api.client.http
    page = (await http.get("/graphql", headers={"Accept": "text/html"})).text
    url = next(u for u in re.findall(r'src="([^"]+)"', page) if "graphiql.min.js" in u)
    plain = await http.get(url, headers={"Accept-Encoding": "identity"})
    # httpx decodes gzip itself: the raw stream shows what went over the wire.
    async with http.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as zipped:
        assert zipped.headers["content-encoding"] == "gzip"
        wire = b"".join([chunk async for chunk in zipped.aiter_raw()])
    assert gzip.decompress(wire) == plain.content
    assert len(wire) < len(plain.content) / 2

    # The same file by an older or no version is served, but must be revalidated.
    unversioned = await http.get(url.split("?")[0])
    assert unversioned.headers["cache-control"] == "no-cache"
    etag = unversioned.headers["etag"]
    again = await http.get(url.split("?")[0], headers={"If-None-Match": etag})
    assert (again.status_code, again.content) == (304, b"")

    for name in ("../settings.py", "..%2F..%2Fpyproject.toml", "assets.json", "vendor.py", "x.js"):
        refused = await http.get(f"/graphiql/assets/{name}")
        assert refused.status_code == 404, name


async def test_with_graphiql_off_neither_the_page_nor_its_assets_exist(
    settings: Settings,
) -> None:
    off = settings.model_copy(update={"graphiql": False, "port": free_port()})
    async with serving(create_app(off), off.port) as client:
        page = await client.http.get("/graphql", headers={"Accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        asset = await client.http.get("/graphiql/assets/graphiql.min.js")
        assert asset.status_code == 404
