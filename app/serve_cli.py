"""`shop serve`, `shop migrate` and `shop schema export`: the API's own commands."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from typing import Any

from app.process import resolved_settings
from app.settings import Settings


def serve_api(settings: Settings, args: argparse.Namespace) -> int:
    """`shop serve [--processes N]`."""
    if args.processes < 1:
        print("shop: --processes must be at least 1", file=sys.stderr)
        return 2
    with resolved_settings(settings, postgres=True, mongo=True, redis=True) as resolved:
        from app.bootstrap import check_migrated

        asyncio.run(check_migrated(resolved))
        if args.processes > 1:
            from app.serve_processes import serve_processes

            serve_processes(resolved, args.processes)
            return 0
        # Imported here: the API stack costs seconds to import, and only serving needs it
        # (a supervisor of several processes never imports it).
        from app.asgi import create_app
        from app.serve_processes import child_sockets

        serve(create_app(resolved), resolved, child_sockets(resolved, args))
    return 0


def migrate_database(settings: Settings, _: argparse.Namespace) -> int:
    from writes.db import migrate

    with resolved_settings(settings, postgres=True) as resolved:
        assert resolved.database_url is not None
        migrate(resolved.database_url)
    print("database schema is up to date", file=sys.stderr)
    return 0


def export_schema(settings: Settings, args: argparse.Namespace) -> int:
    from schema.build import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.path is None:
        sys.stdout.write(sdl)
    else:
        args.path.write_text(sdl)
    return 0


def serve(app: Any, settings: Settings, sockets: list[socket.socket] | None = None) -> None:
    """Serve an ASGI app the way `shop serve` does: uvloop, httptools, no access log; on
    HOST:PORT, or on the `sockets` given (a child's of `shop serve --processes N`)."""
    import uvicorn

    from app.server import ShopServer

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
        # Websocket frames obey the HTTP body limit (uvicorn's default is 16 MiB).
        ws_max_size=settings.max_body_bytes,
    )
    ShopServer(config).run(sockets)
