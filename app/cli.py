"""The `shop` command line: dev, serve, migrate, admin create, schema export."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from app import projections_cli, worker_cli
from app.embedded import EmbeddedServiceError
from app.logs import configure_logging
from app.services import Terminated, check_migrated, resolved_settings, terminate
from app.settings import Settings
from writes.commands import CreateAdmin
from writes.db import DatabaseNotMigrated, create_engine, ensure_migrated, migrate, session_factory
from writes.errors import DomainError
from writes.unit_of_work import CommandMetadata

WORKER_STOP_TIMEOUT_S = 15


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler found
    # at start: this one, so the process exits through our cleanup, not around it.
    signal.signal(signal.SIGTERM, terminate)
    try:
        result: int = args.run(settings, args)
    except (EmbeddedServiceError, DatabaseNotMigrated) as exc:
        print(f"shop: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated):
        return 0
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shop", description="The shop CQRS GraphQL API.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="embedded services, migrations and the API in one go")
    dev.set_defaults(run=_dev)
    serve = commands.add_parser("serve", help="serve the API (the database must be migrated)")
    serve.set_defaults(run=_serve)
    migrate_cmd = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate_cmd.set_defaults(run=_migrate)
    worker = commands.add_parser("worker", help="run the projection worker (arq)")
    worker.set_defaults(run=worker_cli.run)
    projections_cli.add_commands(commands)

    admin = commands.add_parser("admin", help="manage admin accounts").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = admin.add_parser("create", help="create an admin account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password", required=True)
    create.set_defaults(run=_admin_create)

    schema = commands.add_parser("schema", help="the GraphQL schema").add_subparsers(
        required=True, metavar="ACTION"
    )
    export = schema.add_parser("export", help="print the SDL (or write it to PATH)")
    export.add_argument("path", nargs="?", type=Path)
    export.set_defaults(run=_schema_export)
    return parser


def _dev(settings: Settings, _: argparse.Namespace) -> int:
    with resolved_settings(settings, postgres=True, mongo=True, redis=True) as resolved:
        assert resolved.database_url is not None
        migrate(resolved.database_url)
        # The worker gets the resolved URLs, so it joins these servers instead of its own.
        env = os.environ | {
            "DATABASE_URL": resolved.database_url,
            "MONGODB_URL": resolved.mongodb_url or "",
            "REDIS_URL": resolved.redis_url or "",
        }
        worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env)
        try:
            print(f"GraphiQL: http://{resolved.host}:{resolved.port}/graphql", file=sys.stderr)
            _run_uvicorn(resolved)
        finally:
            _stop(worker)
    return 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(WORKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    with resolved_settings(settings, postgres=True, mongo=True, redis=True) as resolved:
        assert resolved.database_url is not None
        asyncio.run(check_migrated(resolved.database_url))
        _run_uvicorn(resolved)
    return 0


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    with resolved_settings(settings, postgres=True) as resolved:
        assert resolved.database_url is not None
        migrate(resolved.database_url)
    print("database schema is up to date", file=sys.stderr)
    return 0


def _admin_create(settings: Settings, args: argparse.Namespace) -> int:
    from writes.bus import MessageBus
    from writes.nudge import ArqNudger, arq_redis

    async def create(resolved: Settings) -> int:
        assert resolved.database_url is not None
        assert resolved.redis_url is not None
        engine = create_engine(resolved.database_url, pool_size=1, max_overflow=0)
        redis = arq_redis(resolved.redis_url)
        try:
            await ensure_migrated(engine)
            bus = MessageBus(session_factory(engine), ArqNudger(redis, resolved.redis_prefix))
            command = CreateAdmin(email=args.email, name=args.name, password=args.password)
            committed = await bus.handle(command, CommandMetadata(None, "cli-admin-create"))
        except DomainError as exc:
            print(f"shop: admin not created: {exc}", file=sys.stderr)
            return 1
        finally:
            await redis.aclose(close_connection_pool=True)
            await engine.dispose()
        print(f"admin {committed.value.email} created with id {committed.value.id}")
        return 0

    with resolved_settings(settings, postgres=True, redis=True) as resolved:
        return asyncio.run(create(resolved))


def _schema_export(settings: Settings, args: argparse.Namespace) -> int:
    from schema.build import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.path is None:
        sys.stdout.write(sdl)
    else:
        args.path.write_text(sdl)
    return 0


def _run_uvicorn(settings: Settings) -> None:
    # Imported here: the API stack costs seconds to import, and the worker and
    # projections commands do not need it.
    from app.asgi import create_app

    serve(create_app(settings), settings)


def serve(app: Any, settings: Settings) -> None:
    """Serve an ASGI app the way `shop serve` does: uvloop, httptools, no access log."""
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
    ShopServer(config).run()


if __name__ == "__main__":
    sys.exit(main())
