"""The benchmark suite's one entry point.

    python -m bench                 # make bench: every row, 5 rounds, rewrites docs/benchmarks.md
    python -m bench --smoke         # make bench-smoke: tiny sizes, a round each, seconds
    python -m bench --only B1,B3    # some rows

Starts (or joins) the embedded services the way `make dev` does unless DATABASE_URL,
MONGODB_URL and REDIS_URL are set; each row gets stores of its own. Asserts nothing:
the report says which targets were met.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from app.bootstrap import load_settings, running_stores
from app.settings import Settings
from bench import (
    history,
    hostile,
    lag,
    memory,
    order_by_id,
    rebuild_rate,
    sustained,
    writes,
)
from bench.plan import Plan
from bench.report import Row, git_revision, load_rows, machine, merged, render, save_rows
from bench.servers import server_versions
from bench.stack import bench_settings

Bench = Callable[[Settings, Plan], Coroutine[Any, Any, Row]]
BENCHES: dict[str, Bench] = {
    "B1": order_by_id.run,
    "B2": history.run,
    "B3": writes.run_throughput,
    "B4": lag.run_lag,
    "B5": rebuild_rate.run,
    "B6": memory.run,
    "B7": hostile.run,
    "B8": sustained.run,
}
REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round each")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated row ids")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per row (default 5)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply full sizes by this (a quick look)"
    )
    parser.add_argument("--output", type=Path, default=None, help="where the report goes")
    args = parser.parse_args()
    chosen = [name.strip().upper() for name in args.only.split(",") if name.strip()]
    if unknown := set(chosen) - BENCHES.keys():
        parser.error(f"no such rows: {', '.join(sorted(unknown))}")
    plan = Plan.smoke_plan() if args.smoke else Plan.full(args.rounds or 5, args.scale)
    output = args.output or (None if args.smoke else REPORT)
    about, revision = machine(), git_revision()  # the code measured, before any edit
    command = "make bench-smoke" if args.smoke else "make bench"
    if args.only != parser.get_default("only") or args.rounds or args.scale != 1.0:
        command = f"python -m bench {' '.join(sys.argv[1:])}"
    rows: list[Row] = []
    with running_stores(load_settings(), postgres=True, mongo=True, redis=True) as found:
        servers = uvloop.run(server_versions(found))
        for name in chosen:
            started = time.monotonic()
            print(f"{name}: running", file=sys.stderr, flush=True)
            load_average = os.getloadavg()[0]
            with bench_settings(found) as settings:
                row = uvloop.run(BENCHES[name](settings, plan))
            row.measured = (
                f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` at revision {revision}, "
                f"load average {load_average:.2f} at its start"
            )
            rows.append(row)
            took = time.monotonic() - started
            print(f"{name}: {row.figure} vs {row.baseline_figure}; ratio {row.ratio}; "
                  f"met {row.met} ({took:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    if output is None:
        sys.stdout.write(render(rows, about, servers))
        return 0
    # Rows measured before and not now stay, each with when and how it was measured.
    rows = merged(load_rows(output), rows)
    save_rows(output, rows)
    output.write_text(render(rows, about, servers))
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
