"""Run one Node script of this folder against the live API of the session fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support import run_command

HERE = Path(__file__).parent
BUDGET_S = 180


async def run_node(script: str, env: dict[str, str], budget_s: float = BUDGET_S) -> str:
    """`node script` in this folder; its stdout, or AssertionError with both streams."""
    node = shutil.which("node")
    assert node is not None, "node is not on PATH"
    assert (HERE / "node_modules").is_dir(), "run `make test-clients` (it installs the packages)"
    code, out, err = await run_command(
        node, script, env=os.environ | env, budget_s=budget_s, cwd=HERE
    )
    assert code == 0, f"{script} exited {code}:\n{out}\n{err}"
    return out
