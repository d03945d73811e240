"""The `shop` command line: dev, serve, worker, migrate, projections, seed, admin, schema.

Parsing the command line imports nothing heavy: each command's module is imported only
when that command runs, so `shop --help` answers without loading a database driver, the
ORM, alembic or GraphQL (tests/unit/test_cli_imports.py holds this).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings

Command = Callable[["Settings", argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from app.embedded import EmbeddedServiceError
    from app.logs import configure_logging
    from app.process import Terminated, terminate
    from app.settings import Settings
    from writes.db import DatabaseNotMigrated

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


def command(target: str) -> Command:
    """The command `module:function`, imported only when it runs."""
    module_name, function_name = target.split(":")

    def run(settings: Settings, args: argparse.Namespace) -> int:
        function: Command = getattr(import_module(module_name), function_name)
        return function(settings, args)

    return run


def _parser() -> argparse.ArgumentParser:
    from app import projections_cli
    from app.seed import command as seed_command

    parser = argparse.ArgumentParser(prog="shop", description="The shop CQRS GraphQL API.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev", help="embedded services, migrations, the API and a worker, kept running"
    )
    dev.set_defaults(run=command("app.dev_cli:run"))
    serve = commands.add_parser("serve", help="serve the API (the database must be migrated)")
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="run N supervised API processes on one port (see LISTEN_SOCKETS)",
    )
    # How `serve --processes N` tells its children where to accept: not for users.
    serve.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=command("app.serve_cli:serve_api"))
    migrate_cmd = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate_cmd.set_defaults(run=command("app.serve_cli:migrate_database"))
    worker = commands.add_parser("worker", help="run the projection worker (arq)")
    worker.add_argument(
        "--processes", type=int, default=1, metavar="N", help="run N supervised worker processes"
    )
    worker.set_defaults(run=command("app.worker_cli:run"))
    projections_cli.add_commands(commands)
    seed_command.add_command(commands)

    admin = commands.add_parser("admin", help="manage admin accounts").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = admin.add_parser("create", help="create an admin account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password", required=True)
    create.set_defaults(run=command("app.admin_cli:create_admin"))

    schema = commands.add_parser("schema", help="the GraphQL schema").add_subparsers(
        required=True, metavar="ACTION"
    )
    export = schema.add_parser("export", help="print the SDL (or write it to PATH)")
    export.add_argument("path", nargs="?", type=Path)
    export.set_defaults(run=command("app.serve_cli:export_schema"))
    possible = schema.add_parser(
        "possible-types", help="print Apollo's possibleTypes JSON (or write it to PATH)"
    )
    possible.add_argument("path", nargs="?", type=Path)
    possible.set_defaults(run=command("app.schema_cli:print_possible_types"))
    return parser


if __name__ == "__main__":
    sys.exit(main())
