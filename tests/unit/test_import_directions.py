"""The import directions of DESIGN.md section 2, as data in pyproject.toml
([tool.shop.imports]): every import between the project's packages is allowed there, and
schema/ touches no database or broker client."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.settings import PROJECT_ROOT

PACKAGES = ("app", "schema", "writes", "reads", "workers")


@dataclass(frozen=True)
class Import:
    importer: str  # a module, e.g. "workers.log_reader"
    imported: str  # e.g. "writes.models"


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def forbidden(
    imports: Iterable[Import],
    allow: Mapping[str, list[str]],
    no_drivers: Mapping[str, list[str]],
    known_leaks: Mapping[str, list[str]],
) -> list[str]:
    """Each import the rules do not allow, as "importer -> imported"."""
    refused = []
    for found in imports:
        home, target = found.importer.split(".")[0], found.imported.split(".")[0]
        if target in PACKAGES and target != home:
            allowed = any(
                _within(found.importer, key) and any(_within(found.imported, e) for e in entries)
                for key, entries in allow.items()
            )
        elif any(_within(found.imported, d) for d in no_drivers.get(home, [])):
            allowed = any(
                _within(found.importer, key) and any(_within(found.imported, e) for e in entries)
                for key, entries in known_leaks.items()
            )
        else:
            allowed = True
        if not allowed:
            refused.append(f"{found.importer} -> {found.imported}")
    return refused


def project_imports() -> list[Import]:
    """Every absolute import in the product packages, function-level ones included."""
    found = []
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found += [Import(module, alias.name) for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.append(Import(module, node.module))
    return found


def rules() -> dict[str, dict[str, list[str]]]:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    tables: dict[str, dict[str, list[str]]] = config["tool"]["shop"]["imports"]
    return tables


def test_every_import_between_packages_is_allowed() -> None:
    r = rules()
    assert forbidden(project_imports(), r["allow"], r["no_drivers"], r["known_leaks"]) == []


def test_every_known_leak_is_still_there() -> None:
    """A fixed leak is struck off the list, so the list never hides a new one."""
    leaks = rules()["known_leaks"]
    imports = project_imports()
    for importer, entries in leaks.items():
        for entry in entries:
            assert any(i.importer == importer and _within(i.imported, entry) for i in imports), (
                f"{importer} no longer imports {entry}: remove it from known_leaks"
            )


ALLOW = {"app": ["schema", "writes"], "schema": ["writes"], "reads.fallback": ["writes.models"]}
NO_DRIVERS = {"schema": ["pymongo", "sqlalchemy"]}
LEAKS = {"schema.queries": ["pymongo.errors"]}


def test_the_rules_refuse_what_they_do_not_list() -> None:
    imports = [
        Import("writes.handlers.orders", "reads.documents"),  # writes imports nothing of reads
        Import("reads.orders", "writes.models"),  # only the fallback may
        Import("schema.orders", "app.settings"),  # nothing imports app
        Import("schema.subscriptions", "pymongo"),  # a driver in schema
        Import("schema.queries", "sqlalchemy.orm"),  # a leak allows what it names only
    ]
    assert forbidden(imports, ALLOW, NO_DRIVERS, LEAKS) == [
        "writes.handlers.orders -> reads.documents",
        "reads.orders -> writes.models",
        "schema.orders -> app.settings",
        "schema.subscriptions -> pymongo",
        "schema.queries -> sqlalchemy.orm",
    ]


def test_the_rules_allow_what_they_list_and_imports_within_a_package() -> None:
    imports = [
        Import("app.asgi", "schema.build"),
        Import("reads.fallback", "writes.models"),
        Import("schema.queries", "pymongo.errors"),
        Import("writes.bus", "writes.handlers.orders"),
        Import("reads.orders", "pymongo"),  # drivers are reads' own business
    ]
    assert forbidden(imports, ALLOW, NO_DRIVERS, LEAKS) == []
