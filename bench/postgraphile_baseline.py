"""B1's second baseline: PostGraphile 4.14 serving the same order from the write store.

What a user who skipped CQRS would run: an off-the-shelf GraphQL engine pointed at the
normalized PostgreSQL tables, answering `orderById` with its lines and customer in one
SQL statement that builds the JSON in the database. It is installed from the committed
lock file (`npm ci` into bench/postgraphile/node_modules, git-ignored) when missing or
stale, and started as its own server process against the database the bench's API uses.
It serves anonymously (no JWT secret): it checks no token and no ownership, as the
engine does out of the box, so every guarantee the API keeps is cost on the API's side.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url

from app.settings import Settings
from bench.stack import Stack, free_port, libpq

DIRECTORY = Path(__file__).resolve().with_name("postgraphile")
LOCK = DIRECTORY / "package-lock.json"
# npm's own record of what node_modules holds, written by every install.
INSTALLED = DIRECTORY / "node_modules" / ".package-lock.json"
CLI = DIRECTORY / "node_modules" / ".bin" / "postgraphile"
INSTALL_BUDGET_S = 300.0
# PostGraphile's connections to PostgreSQL carry this name (pg_stat_activity).
APPLICATION_NAME = "bench-postgraphile"

# The API's B1 selection (bench.reads.ORDER_FIELDS) in the schema PostGraphile generates
# with --simple-collections only: a line's total is no column, so it is checked as
# quantity x unit price instead of being read.
ORDER_QUERY = """query Order($id: UUID!) { orderById(id: $id) {
    id status itemCount totalCents placedAt updatedAt version
    customerByCustomerId { id name }
    orderLinesByOrderIdList(orderBy: PRIMARY_KEY_ASC) {
        productId sku name quantity unitPriceCents
    }
} }"""


async def ensure_installed() -> None:
    """`npm ci` from the committed lock file unless node_modules already matches it."""
    if _installed_matches_lock():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError(
            "B1 needs Node.js 20 and npm for its PostGraphile baseline: install them "
            "(e.g. `apt-get install nodejs npm`) and run the bench again"
        )
    process = await asyncio.create_subprocess_exec(
        npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", cwd=DIRECTORY,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), INSTALL_BUDGET_S)
    if process.returncode != 0 or not CLI.exists():
        raise RuntimeError(f"npm ci in {DIRECTORY} failed:\n{out.decode()[-2000:]}")


def _installed_matches_lock() -> bool:
    """Every package of the lock file is installed at its locked version.

    Versions only: npm's own record of node_modules differs in other fields from one npm
    release to the next, and a stale record should reinstall, never fail the bench.
    """
    if not INSTALLED.exists() or not CLI.exists():
        return False
    wanted = _versions(LOCK)
    wanted.pop("", None)  # the root project itself, absent from npm's installed record
    return _versions(INSTALLED) == wanted


def _versions(lock: Path) -> dict[str, str | None]:
    packages: dict[str, dict[str, Any]] = orjson.loads(lock.read_bytes())["packages"]
    return {path: entry.get("version") for path, entry in packages.items()}


def connection_string(settings: Settings) -> str:
    """The bench's own database, as node-postgres takes it (a unix socket stays one)."""
    assert settings.database_url is not None
    url = make_url(libpq(settings.database_url))
    url = url.update_query_dict({"application_name": APPLICATION_NAME})
    return url.render_as_string(hide_password=False)


async def start(running: Stack) -> tuple[int, asyncio.subprocess.Process]:
    """PostGraphile on a free port, once it says it is listening.

    Flags from its CLI docs' production set (less subscriptions, query batching and the
    inflector plugin, which B1 does not use), with simple list collections (the API's
    `lines` is a plain list too) and NODE_ENV=production.
    """
    await ensure_installed()
    port = free_port()
    node = shutil.which("node")
    assert node is not None  # ensure_installed found it
    process = await running.start(
        node, str(CLI),
        "--schema", "public",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--simple-collections", "only",
        "--dynamic-json",
        "--no-setof-functions-contain-nulls",
        "--no-ignore-rbac",
        "--extended-errors", "errcode",
        "--legacy-relations", "omit",
        "--disable-graphiql",
        "--disable-query-log",
        ready=(b"server listening on port",),
        # In the environment, not argv: a password in the URL stays out of `ps`.
        env={"NODE_ENV": "production", "DATABASE_URL": connection_string(running.settings)},
        cwd=str(DIRECTORY),
        ready_on_stdout=True,
    )  # fmt: skip
    return port, process


def order_facts(order: dict[str, Any]) -> dict[str, Any]:
    """What both servers must agree on, from the API's `order` selection.

    Timestamps to the millisecond: MongoDB keeps no finer, PostgreSQL keeps microseconds.
    """
    return {
        "id": order["id"],
        "status": order["status"],
        "itemCount": order["itemCount"],
        "totalCents": int(order["totalCents"]),
        "version": order["version"],
        "placedAt": _to_millisecond(order["placedAt"]),
        "updatedAt": _to_millisecond(order["updatedAt"]),
        "customer": (order["customer"]["id"], order["customer"]["name"]),
        "lines": [_line_facts(line) for line in order["lines"]],
    }


def _line_facts(line: dict[str, Any]) -> tuple[Any, ...]:
    return (
        line["productId"],
        line["sku"],
        line["name"],
        line["quantity"],
        int(line["unitPriceCents"]),
        int(line["lineTotalCents"]),
    )


def postgraphile_facts(order: dict[str, Any]) -> dict[str, Any]:
    """The same facts from PostGraphile's `orderById` (its BigInts arrive as strings)."""
    customer = order["customerByCustomerId"]
    return order_facts(
        order
        | {
            "customer": customer,
            "lines": [
                line | {"lineTotalCents": line["quantity"] * int(line["unitPriceCents"])}
                for line in order["orderLinesByOrderIdList"]
            ],
        }
    )


def _to_millisecond(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
