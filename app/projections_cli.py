"""`shop projections ...`: status, verify, retry and rebuild, for operators."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

# The drivers are imported when a command runs, not when `shop` parses its arguments.
if TYPE_CHECKING:
    from app.bootstrap import Clients as Stores
    from app.settings import Settings


def add_commands(commands: Any) -> None:
    parser = commands.add_parser("projections", help="inspect and repair the read models")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    status = actions.add_parser("status", help="position, head, lag, state, parked events")
    status.set_defaults(run=_run(_status))
    for action, helptext, handler in (
        ("verify", "compare projected documents with the write store", _verify),
        ("retry", "replay parked events after a fix", _retry),
        ("rebuild", "rebuild from the whole log, then swap in (no downtime)", _rebuild),
    ):
        sub = actions.add_parser(action, help=helptext)
        sub.add_argument("name", nargs="?", help="a projection name")
        sub.add_argument("--all", action="store_true", help="every projection")
        sub.set_defaults(run=_run(handler))


def _run(
    handler: Callable[[Stores, argparse.Namespace], Awaitable[int]],
) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        from app.bootstrap import open_clients
        from app.process import resolved_settings

        with resolved_settings(settings, postgres=True, mongo=True, redis=True) as resolved:

            async def main() -> int:
                async with open_clients(resolved, pool_size=2, max_overflow=0) as stores:
                    return await handler(stores, args)

            return asyncio.run(main())

    return run


def _names(args: argparse.Namespace) -> list[str]:
    from workers.projectors import PROJECTORS

    if args.all:
        return list(PROJECTORS)
    if args.name in PROJECTORS:
        return [args.name]
    known = ", ".join(PROJECTORS)
    raise SystemExit(f"shop: name a projection ({known}) or pass --all")


async def _status(stores: Stores, _: argparse.Namespace) -> int:
    from workers.status import projection_statuses

    statuses = await projection_statuses(stores.engine, stores.db)
    width = max([5, *(len(s.owner or "-") for s in statuses)])
    print(f"{'projection':<10} {'position':>9} {'head':>9} {'lag':>7} {'lag ms':>8} "
          f"{'state':<12} {'parked':>6}  {'owner':<{width}}  last error")  # fmt: skip
    for s in statuses:
        print(f"{s.name:<10} {s.position:>9} {s.head_position:>9} {s.lag_events:>7} "
              f"{s.lag_ms:>8} {s.state:<12} {s.parked:>6}  {s.owner or '-':<{width}}  "
              f"{s.last_error or ''}")  # fmt: skip
    return 0


async def _verify(stores: Stores, args: argparse.Namespace) -> int:
    from sqlalchemy.ext.asyncio import AsyncSession

    from workers.state import load_state
    from workers.verify import record_verification, verify_projection

    failed = False
    for name in _names(args):
        state = await load_state(stores.db, name)
        async with AsyncSession(stores.engine) as session:
            differences = await verify_projection(stores.db, state.collections, session, name)
        await record_verification(stores.db, name, len(differences))
        for line in differences:
            print(f"{name}: {line}")
        print(f"{name}: {len(differences)} difference(s)", file=sys.stderr)
        failed = failed or bool(differences)
    return 1 if failed else 0


async def _retry(stores: Stores, args: argparse.Namespace) -> int:
    from workers.projectors import PROJECTORS
    from workers.retry import retry_parked

    still_parked = 0
    for name in _names(args):
        replayed, still = await retry_parked(
            stores.engine,
            stores.mongo,
            stores.db,
            PROJECTORS[name],
            stores.redis,
            stores.settings.redis_prefix,
        )
        print(f"{name}: {replayed} replayed, {still} still parked")
        still_parked += still
    return 1 if still_parked else 0


async def _rebuild(stores: Stores, args: argparse.Namespace) -> int:
    from workers.projectors import PROJECTORS
    from workers.rebuild import retire, swap_in_rebuilt

    # The projections replay one read of the log together and swap in one by one; their
    # old generations then share one grace wait.
    results = await swap_in_rebuilt(
        stores.engine,
        stores.mongo,
        stores.db,
        [PROJECTORS[name] for name in _names(args)],
        stores.redis,
        stores.settings.redis_prefix,
    )
    for result in results:
        rate = result.events / result.seconds if result.seconds else 0.0
        print(
            f"{result.name}: generation {result.generation} live at position "
            f"{result.position}: {result.events} events in {result.seconds:.1f} s "
            f"({rate:.0f}/s), {result.parked} parked"
        )
    waited = await retire(results, stores.db, stores.settings.projection_drop_grace_s)
    print(f"old generations dropped after a grace of {waited:.1f} s")
    return 0
