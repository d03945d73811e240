"""`shop --help` (and each command's --help) imports no driver, ORM, migration tool or GraphQL.

The subprocess runs with `-X importtime`, which lists every module the interpreter really
imported, so the test counts imports rather than timing them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "strawberry",
    "graphql",
    "sqlalchemy",
    "alembic",
    "pymongo",
    "asyncpg",
    "arq",
    "redis",
    "uvicorn",
    "starlette",
)
SHOP_SCRIPT = Path(sys.executable).parent / "shop"


def imported_packages(argv: list[str]) -> set[str]:
    """The top-level packages a Python process running `argv` imported before it exited."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "usage: shop" in done.stdout
    packages = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            module = line.rsplit("|", 1)[1].strip()
            packages.add(module.split(".")[0])
    assert "argparse" in packages, "-X importtime listed nothing: the check would prove nothing"
    return packages


@pytest.mark.parametrize(
    "arguments",
    [["--help"], ["projections", "--help"], ["seed", "--help"], ["worker", "--help"]],
    ids=" ".join,
)
def test_help_imports_nothing_heavy(arguments: list[str]) -> None:
    packages = imported_packages(["-m", "app.cli", *arguments])
    assert sorted(packages.intersection(HEAVY)) == []


def test_the_console_script_help_imports_nothing_heavy() -> None:
    assert SHOP_SCRIPT.exists(), f"{SHOP_SCRIPT}: the venv has no `shop` console script"
    packages = imported_packages([str(SHOP_SCRIPT), "--help"])
    assert "app" in packages
    assert sorted(packages.intersection(HEAVY)) == []
