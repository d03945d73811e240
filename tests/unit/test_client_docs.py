"""docs/clients.md shows the client set-ups the client tests run, verbatim."""

from __future__ import annotations

import re

from app.settings import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "clients.md"
BLOCK = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", re.DOTALL)


def test_every_file_block_in_the_client_docs_is_that_file() -> None:
    blocks = BLOCK.findall(DOC.read_text())
    assert blocks, "docs/clients.md names no file"
    for path, shown in blocks:
        assert shown == (PROJECT_ROOT / path).read_text(), (
            f"docs/clients.md's copy of {path} is stale"
        )


def test_the_readme_points_to_the_client_docs() -> None:
    assert "docs/clients.md" in (PROJECT_ROOT / "README.md").read_text()
