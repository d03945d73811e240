"""B1's baseline: the same MongoDB read as `order(id)`, behind a plain Starlette route.

    PORT=... MONGODB_URL=... MONGODB_DATABASE=... python -m bench.raw_reads

GET /orders/{id} does the `find_one` the GraphQL resolver does, on the same physical
collection, and returns the whole document as JSON. It is served the way `shop serve`
serves the API (uvicorn, one process, uvloop, httptools, no access log), so the gap
between the two is what GraphQL, auth, the read service and its bookkeeping cost.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.bootstrap import build_mongo, load_settings
from app.logs import configure_logging
from app.serve_cli import serve
from app.settings import Settings
from reads.projection_state import STATE as PROJECTION_STATE

Document = dict[str, Any]


async def orders_collection(client: AsyncMongoClient[Document], database: str) -> str:
    """The physical collection the orders projection serves from, as ReadModel finds it.

    Resolved once: the benchmark never rebuilds, so the generation cannot change.
    """
    state = await client[database][PROJECTION_STATE].find_one({"_id": "orders"})
    if state is None:
        raise RuntimeError(
            f"no orders projection in MongoDB database {database!r}: "
            "start the baseline after the worker has projected the seeded orders"
        )
    name: str = state["collections"].get("orders", "orders")
    return name


def create_app(settings: Settings) -> Starlette:
    """One route, one client, nothing else: the least a read of this document can cost."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = build_mongo(settings)
        try:
            name = await orders_collection(client, settings.mongodb_database)
            app.state.orders = client[settings.mongodb_database][name]
            yield
        finally:
            await client.close()

    async def order(request: Request) -> Response:
        orders: AsyncCollection[Document] = request.app.state.orders
        document = await orders.find_one({"_id": request.path_params["order_id"]})
        if document is None:
            return Response(b'{"error":"not found"}', 404, media_type="application/json")
        return Response(orjson.dumps(document), media_type="application/json")

    return Starlette(routes=[Route("/orders/{order_id}", order)], lifespan=lifespan)


def main() -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    serve(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
