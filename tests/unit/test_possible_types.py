"""possible-types.json: Apollo's `possibleTypes`, committed beside schema.graphql and fresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphql import GraphQLUnionType

from app.cli import main
from schema.build import build_schema
from schema.possible_types import possible_types, possible_types_json

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "possible-types.json"
SCHEMA = build_schema()._schema


def test_the_committed_file_is_what_the_code_builds() -> None:
    assert COMMITTED.read_text() == possible_types_json(SCHEMA), (
        "possible-types.json is stale: run `shop schema possible-types possible-types.json`"
    )


def test_every_union_and_interface_lists_each_of_its_members() -> None:
    found = possible_types(SCHEMA)

    assert found["Node"] == ["Customer", "Order", "Product"]
    assert found["PlaceOrderResult"] == [
        "InsufficientStockError",
        "NotFoundError",
        "OrderSuccess",
        "ValidationError",
    ]
    # The error interface result unions' members implement: `... on UserError` needs it.
    assert "RateLimitedError" in found["UserError"]
    unions = [t for t in SCHEMA.type_map.values() if isinstance(t, GraphQLUnionType)]
    assert unions
    for union in unions:
        assert found[union.name] == sorted(member.name for member in union.types)
    assert not [name for name in found if name.startswith("__")]


def test_the_command_prints_and_writes_the_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "possible-types.json"

    assert main(["schema", "possible-types", str(target)]) == 0
    assert json.loads(target.read_text()) == possible_types(SCHEMA)
    assert main(["schema", "possible-types"]) == 0
    printed = capsys.readouterr().out
    assert printed == target.read_text()
