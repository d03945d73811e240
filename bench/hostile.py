"""B7: what the hostile catalogue costs the API in CPU, against a plain `order(id)`.

One `shop serve` process in production mode (introspection, suggestions and GraphiQL
off, as the public API runs). Each entry of bench/hostile_catalogue.py is sent one
request at a time over one keep-alive connection for a fixed stretch; the API process's
own CPU time (user + system, psutil, its argon2 threads included) over that stretch,
divided by the responses, is the entry's cost. Rounds go through the whole catalogue, and
each entry's ratio is taken against the plain query of the same round.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson
import psutil

from app.settings import Settings
from bench.hostile_catalogue import ACCEPTED, CATALOGUE, REFUSED, Entry, Target, outcome
from bench.plan import Plan
from bench.reads import CHUNK, create_products, place_orders, wait_until_projected
from bench.report import Row
from bench.seed import Seeder
from bench.stack import stack
from bench.stats import Spread, spread

HOST = "127.0.0.1"
LINES = 3
WORST_ACCEPTED, WORST_REFUSED = 50.0, 2.0
PLAIN = CATALOGUE[0]
_nonces = itertools.count()
ANSWER_BUDGET_S = 30.0
WARMUP_SENDS = 100


@dataclass
class Round:
    """Every entry's cost as sent, and with each document made unique."""

    repeated: dict[str, Cost]
    varied: dict[str, Cost]


@dataclass
class Cost:
    """One entry over one stretch: CPU per request and what the server answered."""

    cpu_ms: float
    outcomes: Counter[str]


async def seed(settings: Settings, orders: int) -> tuple[Target, int]:
    """A customer with `orders` orders (myOrders(first: 100) reads a full page) and an admin."""
    seeder = Seeder(settings, pool_size=CHUNK)
    try:
        products = await create_products(seeder, orders, LINES)
        buyer = await seeder.customer()
        placed = await place_orders(seeder, [buyer] * orders, products, LINES)
        admin = await seeder.admin()
    finally:
        await seeder.close()
    target = Target(str(placed[0].value.id), buyer.token, admin.token)
    return target, max(c.position for c in placed)


@dataclass(frozen=True)
class Stretch:
    """How long each entry is sent for, and whether each document is made unique."""

    warmup_s: float
    measure_s: float
    varied: bool


async def measure(
    client: httpx.AsyncClient, api: psutil.Process, entry: Entry, target: Target, how: Stretch
) -> Cost:
    """Warm up, then CPU per request over the stretch.

    An entry the API must refuse warms up until it is refused (a throttle trips only after
    its quota of accepted calls), within WARMUP_SENDS requests.
    """
    warm_until, sent, last = time.monotonic() + how.warmup_s, 0, ""
    while time.monotonic() < warm_until or (
        entry.expect == REFUSED and not last.startswith(REFUSED) and sent < WARMUP_SENDS
    ):
        last = await _send(client, entry, target, how.varied)
        sent += 1
    outcomes: Counter[str] = Counter()
    before = _cpu_s(api)
    until = time.monotonic() + how.measure_s
    while time.monotonic() < until or not outcomes:
        outcomes[await _send(client, entry, target, how.varied)] += 1
    used = _cpu_s(api) - before
    return Cost(used * 1000 / sum(outcomes.values()), outcomes)


async def _send(client: httpx.AsyncClient, entry: Entry, target: Target, varied: bool) -> str:
    body, headers = entry.request(target)
    if varied:
        # A comment changes the text, not the operation: every parser and validation cache
        # misses, as they do for an attacker who varies each document.
        body["query"] = f"# {next(_nonces)}\n{body['query']}"
    try:
        response = await client.post(
            "/graphql",
            content=orjson.dumps(body),
            headers=headers | {"Content-Type": "application/json"},
        )
    except httpx.TimeoutException:
        raise RuntimeError(
            f"{entry.name}: no answer within {ANSWER_BUDGET_S:g} s, the API is stalled"
        ) from None
    try:
        parsed = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        parsed = None
    return outcome(response.status_code, parsed)


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def run(settings: Settings, plan: Plan) -> Row:
    secret = secrets.token_urlsafe(48)
    production = settings.model_copy(update={"environment": "production", "jwt_secret": secret})
    env = {"ENVIRONMENT": "production", "JWT_SECRET": secret}
    orders = plan.size(100, 10)
    async with stack(production) as running:
        (port, api_process), worker = await asyncio.gather(
            running.api(env=env), running.worker(env=env)
        )
        target, position = await seed(production, orders)
        await wait_until_projected(production, position, ("orders", "sales"))
        await running.stop(worker)  # idle from here: the API has the machine to itself
        rounds = await _rounds(port, api_process.pid, target, plan)
    return b7_row(rounds, f"{orders} orders of {LINES} lines for the customer", plan)


def stretches(plan: Plan) -> tuple[Stretch, Stretch]:
    """As sent (the same document again: caches apply) and varied (caches defeated).

    A quarter of the plan's round each: the catalogue has nineteen entries.
    """
    warmup_s, measure_s = plan.warmup_s / 4, plan.round_s / 4
    return Stretch(warmup_s, measure_s, False), Stretch(warmup_s, measure_s, True)


async def _rounds(port: int, pid: int, target: Target, plan: Plan) -> list[Round]:
    api = psutil.Process(pid)
    rounds: list[Round] = []
    repeated, varied = stretches(plan)
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}", timeout=ANSWER_BUDGET_S
    ) as client:
        for _ in range(plan.rounds):
            rounds.append(
                Round(
                    {e.name: await measure(client, api, e, target, repeated) for e in CATALOGUE},
                    {e.name: await measure(client, api, e, target, varied) for e in CATALOGUE},
                )
            )
    return rounds


def b7_row(rounds: list[Round], sizes: str, plan: Plan) -> Row:
    plain = spread([r.repeated[PLAIN.name].cpu_ms for r in rounds])
    ratios = _ratios(rounds, lambda r: r.repeated)
    varied = _ratios(rounds, lambda r: r.varied)
    seen = {
        e.name: sum((r.repeated[e.name].outcomes + r.varied[e.name].outcomes for r in rounds),
                    Counter())
        for e in CATALOGUE
    }  # fmt: skip
    wrong = [e.name for e in CATALOGUE if not _as_expected(e, seen[e.name])]
    accepted = [e for e in CATALOGUE if e.expect == ACCEPTED]
    refused = [e for e in CATALOGUE if e.expect == REFUSED]
    worst_accepted = max(accepted, key=lambda e: ratios[e.name].median)
    worst_refused = max(refused, key=lambda e: ratios[e.name].median)
    met = (
        ratios[worst_accepted.name].median <= WORST_ACCEPTED
        and ratios[worst_refused.name].median <= WORST_REFUSED
        and not wrong
    )
    repeated_how, _ = stretches(plan)
    return Row(
        id="B7",
        what="API CPU per request of the hostile catalogue, production mode",
        baseline=f"{PLAIN.name}, CPU per request in the same round",
        target=f"worst accepted <= {WORST_ACCEPTED:g}x; every refused <= {WORST_REFUSED:g}x; "
        "each entry answered as expected",
        figure=f"worst accepted, {worst_accepted.name}: {_ms(ratios, plain, worst_accepted)} ms; "
        f"worst refused, {worst_refused.name}: {_ms(ratios, plain, worst_refused)} ms",
        baseline_figure=f"{plain.show(2)} ms CPU per request",
        ratio=f"accepted {ratios[worst_accepted.name].show(1)}x; "
        f"refused {ratios[worst_refused.name].show(2)}x",
        met=met,
        sizes=f"{sizes}; {plan.rounds} rounds; each entry sent for {repeated_how.warmup_s:g} s "
        f"warm-up + {repeated_how.measure_s:g} s as is, then as long with unique documents; "
        "one request at a time",
        details=[
            (
                f"{e.name} ({e.expect})",
                f"as sent {ratios[e.name].show(2)}x; unique documents {varied[e.name].show(2)}x; "
                f"{_outcomes(seen[e.name])}",
            )
            for e in CATALOGUE
        ],
        notes=[
            "CPU is the API process's own (user + system, its argon2 threads included), "
            "read with psutil before and after each stretch; the load client is another "
            "process. Every ratio is against the plain query as clients send it (the same "
            "document again), taken round by round.",
            "The target is judged on the catalogue as sent. The 'unique documents' figures "
            "prefix each document with a fresh comment, so the parser, validation and limit "
            "caches all miss, as they would for an attacker who varies every request: they "
            "show what parsing costs on top, which no cache can save.",
            "Entries not answered as expected: " + (", ".join(wrong) or "none") + ".",
        ],
    )


def _ratios(rounds: list[Round], side: Callable[[Round], dict[str, Cost]]) -> dict[str, Spread]:
    """Each entry's CPU per request over the plain query's as sent, round by round."""
    return {
        e.name: spread([side(r)[e.name].cpu_ms / r.repeated[PLAIN.name].cpu_ms for r in rounds])
        for e in CATALOGUE
    }


def _ms(ratios: dict[str, Spread], plain: Spread, entry: Entry) -> str:
    return f"{ratios[entry.name].median * plain.median:.2f}"


def _as_expected(entry: Entry, outcomes: Counter[str]) -> bool:
    if entry.expect == ACCEPTED:
        return set(outcomes) == {ACCEPTED}
    return all(name.startswith(REFUSED) for name in outcomes)


def _outcomes(outcomes: Counter[str]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in outcomes.most_common())
