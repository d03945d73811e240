"""B8: the highest order rate the worker keeps up with, commit -> visible p99 <= 100 ms.

The same set-up as B4 (bench.lag): one API process, one worker, subscribers on every
buyer; first a 16-client burst measures the write side's own rate (B3's measure of it),
then paced rounds at rising fractions of it, each after the worker caught up. The row's
figure is the highest paced rate whose visible p99 held the target, as a ratio of the
burst rate; a rate that misses it ends the climb (higher ones would only miss more).
"""

from __future__ import annotations

import asyncio
import contextlib

from app.settings import Settings
from bench.lag import SUBSCRIBERS, Arrivals, RoundLag, lag_round, watch_batches, watch_subscribers
from bench.plan import Plan
from bench.report import Row
from bench.stack import load
from bench.writes import CLIENTS, graphql_load, order_requests, shop

LAG_P99_MS = 100.0
FRACTIONS = (0.25, 0.5, 0.75, 0.9, 1.0)
SMOKE_FRACTIONS = (0.5,)


async def run(settings: Settings, plan: Plan) -> Row:
    fractions = SMOKE_FRACTIONS if plan.smoke else FRACTIONS
    steps: list[tuple[float, RoundLag]] = []
    async with shop(settings) as running, contextlib.AsyncExitStack() as exits:
        buyers = await running.buyers(SUBSCRIBERS)
        requests = order_requests(buyers, running.products)
        await running.preflight(requests)
        burst = await load(graphql_load(running.port, requests, plan.warmup_s, plan.round_s))
        if not burst["rps"]:
            raise RuntimeError(f"the burst placed no orders: {burst['error_sample']}")
        await running.caught_up()
        arrivals = Arrivals()
        tasks = [await watch_batches(running.redis, settings.redis_prefix, arrivals)]
        tasks += await watch_subscribers(running.port, buyers, arrivals, exits)
        try:
            for fraction in fractions:
                step = await lag_round(running, requests, burst["rps"] * fraction, plan,
                                       arrivals)  # fmt: skip
                steps.append((fraction, step))
                await running.caught_up()
                if not _kept(step):
                    break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return _row(plan, burst["rps"], steps)


def _kept(step: RoundLag) -> bool:
    return step.p(step.visible_ms, 0.99) <= LAG_P99_MS and step.errors == step.missing == 0


def _row(plan: Plan, burst_rps: float, steps: list[tuple[float, RoundLag]]) -> Row:
    kept = [(fraction, step) for fraction, step in steps if _kept(step)]
    best_rate = max((step.rate for _, step in kept), default=0.0)
    ratio = best_rate / burst_rps
    row = Row(
        "B8", "sustained placeOrder rate the worker keeps with visible lag p99 <= 100 ms",
        f"the write side's own rate: a {CLIENTS}-client burst through the API (as B3)",
        "as high as the write side's rate (1.0x): the worker is not the bottleneck",
        figure=f"{best_rate:.0f} orders/s", baseline_figure=f"{burst_rps:.0f} orders/s",
        ratio=f"{ratio:.2f}x", met=ratio >= 0.9,
        sizes=f"paced rounds at {', '.join(f'{f:g}' for f, _ in steps)} of the burst rate, "
        f"{plan.warmup_s:g} s warm-up + {plan.round_s:g} s each, one API process and one "
        f"worker, {SUBSCRIBERS} subscribers",
    )  # fmt: skip
    row.details = [
        (f"{fraction:g} of the burst ({step.rate:.0f} orders/s achieved)",
         f"visible p50 {step.p(step.visible_ms, 0.5):.1f} / p99 "
         f"{step.p(step.visible_ms, 0.99):.1f} ms; pushed p99 "
         f"{step.p(step.pushed_ms, 0.99):.1f} ms; CPU per order: API {step.api_cpu_ms:.1f}, "
         f"worker {step.worker_cpu_ms:.1f} ms; {step.errors} failed, {step.missing} unseen")
        for fraction, step in steps
    ]  # fmt: skip
    row.notes = [
        "A single round per rate (not alternating with a baseline): the baseline is the "
        "burst measured just before, in the same processes. The paced client runs on the "
        "same two cores as the API, the worker and the stores, so at the burst rate the "
        "machine, not only the worker, is saturated."
    ]
    row.notes += [f"- Error sample at {fraction:g}: {step.error_sample}"
                  for fraction, step in steps if step.error_sample]  # fmt: skip
    return row
