"""GraphiQL served by the app itself, assets included: it works with no network at all.

The page (what GET /graphql answers a browser) loads only files of `static/`, by URLs
that carry their sha256, so a browser caches them for good and a new version is a new
URL. A strict Content-Security-Policy holds the page to its own origin: scripts from
here only (none inline), requests and websockets to this origin only. `vendor.py`
regenerates the third-party files from their npm packages (`make graphiql-assets`).
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).parent / "static"
MANIFEST = Path(__file__).parent / "assets.json"
ASSETS_PATH = "/graphiql/assets"
# Our own files beside the vendored ones (assets.json lists those).
OWN_FILES = ("shop-graphiql.js", "shop-graphiql.css")
SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
    "shop-graphiql.js",
)
STYLES = ("graphiql.min.css", "plugin-explorer.css", "shop-graphiql.css")
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
IMMUTABLE = "public, max-age=31536000, immutable"
# GraphiQL's components style themselves at run time (style attributes and <style>
# elements), hence 'unsafe-inline' for styles only; its fonts are data: URLs.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self' data:",
        "img-src 'self' data:",
        "connect-src 'self'",  # CSP 3: 'self' covers ws:// and wss:// to this host too
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
DEFAULT_QUERY = """\
# The shop's GraphQL API. Run a query with Ctrl-Enter; the Docs and Explorer
# panes on the left list every field.
#
# Logged in? Put your token in the Headers pane below:
#   {"Authorization": "Bearer TOKEN"}
# It is sent with every query and mutation, and as the websocket's
# connectionParams for subscriptions.

{
  products(first: 5) {
    edges { node { id sku name priceCents stock inStock } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    content_type: str
    version: str


@cache
def assets() -> dict[str, Asset]:
    """Every file the page loads, read once; its version is its sha256's start."""
    listed = list(json.loads(MANIFEST.read_text())) + list(OWN_FILES)
    found = {}
    for name in listed:
        body = (STATIC / name).read_bytes()
        found[name] = Asset(
            body=body,
            gzipped=gzip.compress(body, mtime=0),
            content_type=CONTENT_TYPES[Path(name).suffix],
            version=hashlib.sha256(body).hexdigest()[:16],
        )
    return found


def asset_url(name: str) -> str:
    return f"{ASSETS_PATH}/{name}?v={assets()[name].version}"


@cache
def page(endpoint: str = "/graphql") -> str:
    styles = "\n".join(f'  <link rel="stylesheet" href="{asset_url(n)}">' for n in STYLES)
    scripts = "\n".join(f'  <script src="{asset_url(n)}"></script>' for n in SCRIPTS)
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Shop API · GraphiQL</title>
  <link rel="icon" href="data:,">
{styles}
</head>
<body>
  <div id="graphiql" data-endpoint="{html.escape(endpoint)}"
       data-default-query="{html.escape(DEFAULT_QUERY)}">Loading GraphiQL…</div>
{scripts}
</body>
</html>
"""


def page_response() -> HTMLResponse:
    return HTMLResponse(page(), headers=PAGE_HEADERS)


async def serve_asset(request: Request) -> Response:
    """A file of the page, by name only (nothing else on disk is reachable)."""
    asset = assets().get(request.path_params["name"])
    if asset is None:
        return Response("no such asset", status_code=404, media_type="text/plain")
    # The versioned URL never changes content; any other URL must be revalidated.
    current = request.query_params.get("v") == asset.version
    headers = {
        "Cache-Control": IMMUTABLE if current else "no-cache",
        "ETag": f'"{asset.version}"',
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = asset.gzipped, "gzip"
    return Response(body, media_type=asset.content_type, headers=headers)


def graphiql_routes() -> list[Route]:
    return [Route(ASSETS_PATH + "/{name}", serve_asset, methods=["GET", "HEAD"])]
