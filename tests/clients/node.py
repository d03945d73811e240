"""Run one Node script of this folder against the live API of the session fixtures."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

HERE = Path(__file__).parent
BUDGET_S = 180


async def run_node(script: str, env: dict[str, str], budget_s: float = BUDGET_S) -> str:
    """`node script` in this folder; its stdout, or AssertionError with both streams."""
    node = shutil.which("node")
    assert node is not None, "node is not on PATH"
    assert (HERE / "node_modules").is_dir(), "run `make test-clients` (it installs the packages)"
    process = await asyncio.create_subprocess_exec(
        node, script, cwd=HERE, env=os.environ | env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), budget_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{script} ran past {budget_s} s") from None
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"{script} exited {process.returncode}:\n{text}\n{err.decode()}"
    return text
