"""The code, the committed export and the public contract must not drift apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from graphql import build_schema

from schema.build import build_schema as build_api_schema

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "schema.graphql"
CONTRACT_COPY = ROOT / "contract.graphql"
SHARED = ROOT.parent / "shared"


def _checker() -> ModuleType:
    path = SHARED / "tools" / "contract_check.py"
    assert path.exists(), f"the contract checker is missing: {path} (shared/ sits beside the repo)"
    spec = importlib.util.spec_from_file_location("contract_check", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_export_is_what_the_code_builds() -> None:
    built = build_api_schema().as_str() + "\n"
    assert EXPORT.read_text() == built, (
        "schema.graphql is stale: run `shop schema export schema.graphql`"
    )


def test_the_contract_copy_is_the_shared_contract() -> None:
    shared = SHARED / "contract" / "schema.graphql"
    assert shared.exists(), f"the shared contract is missing: {shared}"
    assert CONTRACT_COPY.read_text() == shared.read_text(), "contract.graphql differs from shared/"


def test_the_export_honours_the_whole_contract() -> None:
    contract = build_schema(CONTRACT_COPY.read_text())
    exported = build_schema(EXPORT.read_text())

    assert _checker().differences(exported, contract) == []
