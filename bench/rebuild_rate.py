"""B5: `shop projections rebuild --all` over a large log, against raw PyMongo bulk upserts.

The log is written straight into `event_log` (bench.event_log: the command bus would
take most of an hour for 200k events), after a few real commands whose events the
generated ones are checked against. Each round runs the real command as a subprocess
while sampling its memory, counts the final documents of every projection, then writes
exactly those documents with `bulk_write` of `ReplaceOne(upsert=True)` in batches of
1000 into fresh collections with the same indexes: what the documents cost without the
projection machinery (reading the log, projectors, transactions, checkpoints).

After every swap the rebuild waits PROJECTION_DROP_GRACE_S once before dropping the old
generations, so readers that resolved the old names finish; that wait does not depend on
the log's size, so the headline rate leaves it out and the details show it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from pymongo import AsyncMongoClient, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from app.bootstrap import build_mongo
from app.settings import Settings
from bench.event_log import (
    LoadedLog,
    LogRow,
    check_shapes,
    load_history,
    log_size,
    sample_rows,
    write_real_sample,
)
from bench.memory import RssSampler
from bench.plan import Plan
from bench.report import Row
from bench.seed import Seeder
from bench.stack import Stack, stack
from bench.stats import spread
from reads.documents import ensure_indexes
from workers.log_reader import decode_row
from workers.projection import StoredEvent
from workers.projectors import PROJECTORS
from workers.state import EPOCH, load_state

Document = dict[str, Any]
RAW_BATCH = 1000
RSS_EVERY_S = 0.1
RSS_LIMIT_MB = 300.0
# A round over a million events takes minutes on each side.
MAX_ROUNDS = 3
TARGET_RATIO = 0.5
# Enough generated events that every event type occurs, for the shape check.
SHAPE_SAMPLE = 5000
GRACE_LINE = re.compile(r"old generations dropped after a grace of (?P<seconds>[\d.]+) s")
RESULT_LINE = re.compile(
    r"^(?P<name>\w+): generation \d+ live at position \d+: (?P<events>\d+) events in "
    r"(?P<seconds>[\d.]+) s \(\d+/s\), (?P<parked>\d+) parked$"
)


class WriteCounter:
    """How many document updates each projector folds out of the generated log.

    Projectors are pure, so asking them costs no database: the figure shows where
    aggregates (stock, sales) fold many updates into few documents, each written once
    per flush. What an event touches depends on its type and its number of lines only,
    so each such shape is asked once.
    """

    def __init__(self) -> None:
        self.writes: Counter[str] = Counter()
        self._per_shape: dict[tuple[str, int], dict[str, int]] = {}

    def __call__(self, row: LogRow) -> None:
        _, stream_type, stream_id, version, kind, raw, metadata = row
        data = orjson.loads(raw)
        shape = (kind, len(data.get("lines", ())))
        if shape not in self._per_shape:
            decoded = decode_row(kind, orjson.loads(metadata)["schema_version"], data)
            event = StoredEvent(0, stream_type, str(stream_id), version, decoded, EPOCH)
            self._per_shape[shape] = {
                name: len(projector.touches(event)) for name, projector in PROJECTORS.items()
            }
        self.writes.update(self._per_shape[shape])


@dataclass(frozen=True)
class ProjectionRebuild:
    """One projection's line of the command's output, with its final documents and writes."""

    name: str
    events: int
    seconds: float
    parked: int
    documents: int = 0
    writes: int = 0

    @property
    def replay_s(self) -> float:
        """Its replay and swap (the command reports it without the grace wait)."""
        return max(self.seconds, 1e-3)


@dataclass
class RoundResult:
    wall_s: float
    rss_max_mb: float
    projections: list[ProjectionRebuild]
    grace_s: float
    raw_s: float = 0.0
    by_collection: dict[str, int] = field(default_factory=dict)

    @property
    def documents(self) -> int:
        return sum(self.by_collection.values())

    @property
    def replay_s(self) -> float:
        """The wall time without the grace wait (one for all projections, when the old
        generation held documents)."""
        return self.wall_s - self.grace_s

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.replay_s

    @property
    def raw_docs_per_s(self) -> float:
        return self.documents / self.raw_s


async def run(settings: Settings, plan: Plan) -> Row:
    size = plan.size(1_000_000, 2_000)
    rounds = 1 if plan.smoke else min(plan.rounds, MAX_ROUNDS)
    assert settings.database_url is not None
    assert settings.mongodb_url is not None
    real = await _write_real_sample(settings)
    types = await check_shapes(settings.database_url, sample_rows(SHAPE_SAMPLE))
    writes = WriteCounter()
    loaded = await load_history(settings.database_url, size - real, observe=writes)
    mongo: AsyncMongoClient[Document] = build_mongo(settings, patient=True)
    results = []
    try:
        db = mongo[settings.mongodb_database]
        async with stack(settings) as running:
            for _ in range(rounds):
                result = await _rebuild(running)
                result.by_collection = await _final_counts(db, result.projections, writes)
                result.raw_s = await _raw_upserts(db)
                results.append(result)
                print(f"B5 round: {_round_line(result)}", file=sys.stderr, flush=True)
    finally:
        await mongo.close()
    return _row(results, loaded, real, types)


async def _write_real_sample(settings: Settings) -> int:
    """A few real commands at the head of the log; how many events they appended."""
    seeder = Seeder(settings, pool_size=2)
    try:
        await write_real_sample(seeder)
    finally:
        await seeder.close()
    assert settings.database_url is not None
    return await log_size(settings.database_url)


async def _rebuild(running: Stack) -> RoundResult:
    """`shop projections rebuild --all` as an operator runs it, its memory sampled."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "projections", "rebuild", "--all",
        env=running.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    running.processes.append(process)  # stopped with the stack if the bench fails
    async with RssSampler(process.pid, RSS_EVERY_S) as sampler:
        out, err = await process.communicate()
    wall = time.perf_counter() - started
    running.processes.remove(process)
    if process.returncode != 0:
        raise RuntimeError(f"the rebuild failed ({process.returncode}):\n{err.decode()[-2000:]}")
    projections = list(_parse(out.decode()))
    grace = GRACE_LINE.search(out.decode())
    if grace is None:
        raise RuntimeError(f"the rebuild did not say how long it waited:\n{out.decode()}")
    if sorted(p.name for p in projections) != sorted(PROJECTORS):
        raise RuntimeError(f"could not read every projection's result in:\n{out.decode()}")
    if parked := [p.name for p in projections if p.parked]:
        raise RuntimeError(f"the rebuild parked events of {parked}: the generated log is wrong")
    return RoundResult(wall, sampler.max_mb, projections, float(grace["seconds"]))


def _parse(output: str) -> Iterator[ProjectionRebuild]:
    for line in output.splitlines():
        if found := RESULT_LINE.match(line.strip()):
            yield ProjectionRebuild(
                found["name"], int(found["events"]), float(found["seconds"]), int(found["parked"])
            )


async def _live_collections(db: AsyncDatabase[Document]) -> dict[str, str]:
    """Logical -> physical name of every projection's live collections."""
    live: dict[str, str] = {}
    for name in PROJECTORS:
        live |= (await load_state(db, name)).collections
    return live


async def _final_counts(
    db: AsyncDatabase[Document], projections: list[ProjectionRebuild], writes: WriteCounter
) -> dict[str, int]:
    """Documents per logical collection; each projection's documents and writes go on its
    result."""
    counts = {
        logical: await db[physical].count_documents({})
        for logical, physical in (await _live_collections(db)).items()
    }
    for index, rebuilt in enumerate(projections):
        owned = PROJECTORS[rebuilt.name].collections
        documents = sum(counts[logical] for logical in owned)
        projections[index] = replace(
            rebuilt, documents=documents, writes=writes.writes[rebuilt.name]
        )
    return counts


async def _raw_upserts(db: AsyncDatabase[Document]) -> float:
    """Seconds to upsert every live document into fresh, indexed collections.

    The documents are read first (not timed); only building the requests and the
    bulk writes are, as a rebuild builds its requests too.
    """
    seconds = 0.0
    for logical, physical in (await _live_collections(db)).items():
        documents = await db[physical].find().to_list(None)
        fresh = f"bench_raw_{logical}"
        await db.drop_collection(fresh)
        await ensure_indexes(db, {logical: fresh})
        started = time.perf_counter()
        for first in range(0, len(documents), RAW_BATCH):
            batch = documents[first : first + RAW_BATCH]
            await db[fresh].bulk_write(
                [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in batch]
            )
        seconds += time.perf_counter() - started
        await db.drop_collection(fresh)
    return seconds


def _round_line(result: RoundResult) -> str:
    return (
        f"{result.wall_s:.1f} s wall, {result.replay_s:.1f} s replay, "
        f"{result.documents} documents, {result.docs_per_s:,.0f} docs/s vs raw "
        f"{result.raw_docs_per_s:,.0f} docs/s, rebuild RSS max {result.rss_max_mb:.0f} MB"
    )


def _row(results: list[RoundResult], loaded: LoadedLog, real: int, types: list[str]) -> Row:
    events = loaded.events + real
    ratios = [r.docs_per_s / r.raw_docs_per_s for r in results]
    rss = max(r.rss_max_mb for r in results)
    met = spread(ratios).median >= TARGET_RATIO and rss < RSS_LIMIT_MB
    row = Row(
        id="B5",
        what="rebuild rate: `shop projections rebuild --all` (documents/s)",
        baseline="raw PyMongo bulk upserts of the same documents",
        target=f">= {TARGET_RATIO}x; rebuild RSS < {RSS_LIMIT_MB:.0f} MB",
        figure=f"{spread([r.docs_per_s for r in results]).show(0)} docs/s",
        baseline_figure=f"{spread([r.raw_docs_per_s for r in results]).show(0)} docs/s",
        ratio=f"{spread(ratios).show(2)}x",
        met=met,
        sizes=_sizes(results[0], loaded, real),
    )
    row.details = _details(results, events)
    row.notes = _notes(loaded, real, types, len(results))
    return row


def _sizes(first: RoundResult, loaded: LoadedLog, real: int) -> str:
    by_type = ", ".join(f"{n} {kind}" for kind, n in sorted(loaded.by_type.items()))
    documents = ", ".join(f"{n} {name}" for name, n in first.by_collection.items())
    return (
        f"{loaded.events + real} events ({real} through the command bus, then {by_type}); "
        f"{first.documents} final documents ({documents})"
    )


def _details(results: list[RoundResult], events: int) -> list[tuple[str, str]]:
    def show(values: list[float], digits: int = 0) -> str:
        return spread(values).show(digits)

    details = [
        ("rebuild wall time, s (with the grace wait)", show([r.wall_s for r in results], 1)),
        ("grace wait before the old generations were dropped, s",
         show([r.grace_s for r in results], 1)),
        ("rebuild time without the grace wait, s", show([r.replay_s for r in results], 1)),
        ("log events/s (each projection replays the whole log)",
         show([events / r.replay_s for r in results])),
        ("documents/s counting the grace wait", show([r.documents / r.wall_s for r in results])),
        ("raw bulk upsert time, s", show([r.raw_s for r in results], 1)),
        ("rebuild process RSS, max sampled, MB", show([r.rss_max_mb for r in results], 0)),
    ]  # fmt: skip
    # The projections replay one read of the log together: their own times are the same
    # pass, so what sets them apart is how many updates fold into how many documents.
    for index, first in enumerate(results[0].projections):
        mine = [r.projections[index] for r in results]
        details += [
            (f"{first.name}: seconds until swapped in", show([p.seconds for p in mine], 1)),
            (f"{first.name}: document updates folded into its {first.documents} documents",
             f"{first.writes:,}"),
        ]  # fmt: skip
    return details


def _notes(loaded: LoadedLog, real: int, types: list[str], rounds: int) -> list[str]:
    return [
        f"The log: {real} events from real commands, then {loaded.events} generated events "
        f"(bench/event_log.py) copied in at {loaded.events / loaded.seconds:,.0f} events/s; "
        f"the generated {', '.join(types)} events have the same payload and metadata shapes "
        "as the real ones (checked before loading).",
        "Rates leave out the grace wait before the old generations are dropped (one for "
        "all projections, only when the old generation held documents: none in the first "
        "round's fresh store; see the wall time); the command's start-up (imports, "
        "connecting) is in.",
        "No `shop worker` runs during the rebuild (it would first have to project the same "
        "log); the RSS is the rebuild process's, sampled every "
        f"{RSS_EVERY_S * 1000:.0f} ms.",
        f"The baseline writes into fresh collections with the indexes of reads/documents.py "
        f"(the ones a rebuild creates), `bulk_write` of `ReplaceOne(upsert=True)` in batches "
        f"of {RAW_BATCH}, ordered, no transaction, AsyncMongoClient as the service uses.",
        f"{rounds} round(s) over the same log; each rebuild makes the next generation.",
    ]
