"""docs/benchmarks.md: the machine, the versions, and every row with its baseline."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import orjson
import psutil

PACKAGES = ("strawberry-graphql", "starlette", "uvicorn", "sqlalchemy", "asyncpg", "pymongo",
            "arq", "redis", "orjson", "uvloop", "httptools")  # fmt: skip
NOTES = Path(__file__).with_name("profile_notes.md")


@dataclass
class Row:
    """One measurement: its figures, its baseline's, the ratio and the target."""

    id: str
    what: str
    baseline: str
    target: str
    # The headline: figure vs baseline, shown as "median (min-max)" strings.
    figure: str = ""
    baseline_figure: str = ""
    ratio: str = ""
    met: bool | None = None
    sizes: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # When, by which command and at which revision (set by the runner).
    measured: str = ""


def rows_file(report: Path) -> Path:
    return report.with_suffix(".json")


def load_rows(report: Path) -> list[Row]:
    """The rows of the last report written to `report`, to keep those not re-measured."""
    stored = rows_file(report)
    if not stored.exists():
        return []
    rows = []
    for fields in orjson.loads(stored.read_bytes()):
        fields["details"] = [tuple(pair) for pair in fields["details"]]
        rows.append(Row(**fields))
    return rows


def save_rows(report: Path, rows: list[Row]) -> None:
    stored = rows_file(report)
    stored.write_bytes(orjson.dumps([asdict(row) for row in rows], option=orjson.OPT_INDENT_2))


def merged(previous: list[Row], measured: list[Row]) -> list[Row]:
    """The rows just measured, and the previous ones not re-measured, in id order."""
    by_id = {row.id: row for row in previous} | {row.id: row for row in measured}
    return [by_id[key] for key in sorted(by_id)]


def machine() -> list[tuple[str, str]]:
    memory = psutil.virtual_memory().total / 2**30
    cpu = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if "model name" in line), cpu
            )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("machine", f"{psutil.cpu_count()} cores ({cpu}), {memory:.0f} GB, {platform.platform()}"),
        ("load average at the start", load),
        ("python", platform.python_version()),
        ("packages", ", ".join(f"{name} {version(name)}" for name in PACKAGES)),
    ]


def git_revision() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
    return found.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def render(rows: list[Row], about: list[tuple[str, str]], servers: list[tuple[str, str]]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Reproduce with `make bench` (every row) or `.venv/bin/python -m bench --only B4` "
        "(some rows; the others stay as last measured). Each row says when, by which "
        "command and at which revision it was measured; its baseline ran in the same run, "
        "on the same machine, in alternating rounds. Every figure is the median of the "
        "rounds, with the lowest and highest round in brackets. These machines are shared "
        "and noisy: compare ratios, and never a figure with one from another run.",
        "",
        *(f"- **{key}**: {value}" for key, value in [*about, *servers]),
        "",
        "| id | what | figure | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "n/a"}[row.met]
        lines.append(
            f"| {row.id} | {row.what} | {row.figure} | {row.baseline}: {row.baseline_figure} "
            f"| {row.ratio} | {row.target} | {met} |"
        )
    for row in rows:
        lines += ["", f"## {row.id}: {row.what}", ""]
        if row.measured:
            lines += [f"Measured {row.measured}.", ""]
        if row.sizes:
            lines += [f"Sizes: {row.sizes}.", ""]
        if row.details:
            lines += ["| figure | median (min-max) |", "| --- | --- |"]
            lines += [f"| {label} | {value} |" for label, value in row.details]
        for note in row.notes:
            lines += ["", note]
    if NOTES.exists():
        lines += ["", NOTES.read_text().strip()]
    return "\n".join(lines) + "\n"
