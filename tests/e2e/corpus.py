"""Operations for the compiled-path differential test: every query document the
project's own docs and tests send, and generated selections over the compiled fields.
"""

from __future__ import annotations

import ast
import importlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

ROOT = Path(__file__).resolve().parents[2]
_FENCED = re.compile(r"```graphql\n(.*?)```", re.S)


@dataclass(frozen=True)
class Operation:
    query: str
    operation_name: str | None
    # Variable name -> its type as written ("ID!", "Boolean", ...).
    variables: dict[str, str] = field(default_factory=dict)


def _texts_in_python(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "{" in node.value:
            found.add(node.value)
    return found


def _module_constants(path: Path) -> set[str]:
    """Module-level strings built with f-strings (ast sees only their pieces)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    try:
        loaded = importlib.import_module(module)
    except Exception:  # a module that needs what only its own suite provides
        return set()
    return {value for value in vars(loaded).values() if isinstance(value, str) and "{" in value}


def project_operations() -> list[Operation]:
    """Every query operation written in the docs, the tests and the benchmarks."""
    texts: set[str] = set()
    for path in sorted([*ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]):
        texts |= _texts_in_python(path) | _module_constants(path)
    for path in sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md"]):
        texts |= set(_FENCED.findall(path.read_text()))
    operations: list[Operation] = []
    for text in sorted(texts):
        try:
            document = parse(text)
        except (GraphQLError, RecursionError):
            continue
        defined = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if not defined or any(d.operation is not OperationType.QUERY for d in defined):
            continue
        for definition in defined:
            name = definition.name.value if definition.name else None
            variables = {
                v.variable.name.value: _type_text(v.type)
                for v in definition.variable_definitions or ()
            }
            operations.append(Operation(text, name if len(defined) > 1 else None, variables))
    return operations


def _type_text(node: Any) -> str:
    kind = node.kind
    if kind == "non_null_type":
        return _type_text(node.type) + "!"
    if kind == "list_type":
        return f"[{_type_text(node.type)}]"
    return str(node.name.value)


ORDER_FIELDS = ["id", "status", "itemCount", "totalCents", "placedAt", "updatedAt", "version"]
CUSTOMER_FIELDS = ["id", "name", "email"]
LINE_FIELDS = ["id", "productId", "sku", "name", "unitPriceCents", "quantity", "lineTotalCents"]
PAGE_INFO_FIELDS = ["hasNextPage", "endCursor", "hasPreviousPage", "startCursor"]
PRODUCT_FIELDS = [
    *("id", "sku", "name", "description", "priceCents", "stock", "inStock", "unitsSold"),
    *("version", "updatedAt"),
]


class _Selections:
    """Random selections with aliases, fragments, directives and merged fields."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.fragments: list[str] = []

    def fields(
        self, type_name: str, names: list[str], nested: dict[str, tuple[str, list[str]]]
    ) -> str:
        rng = self.rng
        parts: list[str] = []
        for name in rng.sample(names, rng.randint(1, len(names))):
            parts.append(self._decorated(name))
        for name, (child_type, child_fields) in nested.items():
            if rng.random() < 0.7:
                inner = self.fields(child_type, child_fields, {})
                parts.append(f"{self._decorated(name)} {{ {inner} }}")
        if rng.random() < 0.3:
            parts.append("__typename")
        if rng.random() < 0.3:  # the same field twice: graphql-core merges them
            parts.append(rng.choice(names))
        if rng.random() < 0.3:
            parts.append(f"... on {type_name} {{ {rng.choice(names)} }}")
        if type_name in ("Order", "Product") and rng.random() < 0.3:
            parts.append("... on Node { id }")
        if rng.random() < 0.25:
            fragment = f"F{len(self.fragments)}"
            self.fragments.append(
                f"fragment {fragment} on {type_name} {{ {' '.join(rng.sample(names, 2))} }}"
            )
            parts.append(self._directive(f"...{fragment}"))
        rng.shuffle(parts)
        return " ".join(parts)

    def _decorated(self, selection: str) -> str:
        rng = self.rng
        if rng.random() < 0.25:
            selection = f"{rng.choice(['a', 'b', 'x1', 'renamed'])}{rng.randint(0, 9)}: {selection}"
        return self._directive(selection)

    def _directive(self, selection: str) -> str:
        roll = self.rng.random()
        if roll < 0.1:
            return f"{selection} @include(if: $flag)"
        if roll < 0.2:
            return f"{selection} @skip(if: $flag)"
        if roll < 0.25:
            return f"{selection} @skip(if: true)"
        if roll < 0.3:
            return f"{selection} @include(if: true)"
        return selection


def generated_operations(count: int, seed: int = 14) -> list[Operation]:
    """`count` operations on the compiled root fields (order, product, myOrders, __typename)."""
    rng = random.Random(seed)
    operations: list[Operation] = []
    order_nested = {
        "customer": ("OrderCustomer", CUSTOMER_FIELDS),
        "lines": ("OrderLine", LINE_FIELDS),
    }
    for index in range(count):
        selections = _Selections(rng)
        roots: list[str] = []
        variables = {"flag": "Boolean!"}
        if rng.random() < 0.8:
            roots.append(
                f"order(id: $id) {{ {selections.fields('Order', ORDER_FIELDS, order_nested)} }}"
            )
            variables["id"] = "ID!"
        if rng.random() < 0.4 or not roots:
            roots.append(
                f"p: product(id: $pid) {{ {selections.fields('Product', PRODUCT_FIELDS, {})} }}"
            )
            variables["pid"] = "ID!"
        if rng.random() < 0.3:
            page = rng.choice(["", "(first: 1)", "(first: 5, status: PLACED)", "(first: 0)"])
            info = rng.sample(PAGE_INFO_FIELDS, rng.randint(1, len(PAGE_INFO_FIELDS)))
            node = selections.fields("Order", ORDER_FIELDS, order_nested)
            extra = " totalCount" if rng.random() < 0.2 else ""
            roots.append(
                f"history: myOrders{page} {{ edges {{ cursor node {{ {node} }} }} "
                f"pageInfo {{ {' '.join(info)} }}{extra} }}"
            )
        if rng.random() < 0.2:
            roots.append("__typename")
        used = " ".join([*roots, *selections.fragments])
        if "$flag" not in used:
            del variables["flag"]
        declared = ", ".join(f"${name}: {kind}" for name, kind in variables.items())
        text = f"query Generated{index}({declared}) {{ {' '.join(roots)} }}"
        text = "\n".join([text, *selections.fragments])
        operations.append(Operation(text, None, variables))
    return operations
