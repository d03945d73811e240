"""What a document asks for, measured in time linear in its text, whatever its fragments do.

Fragments are summarized once each, in dependency order; a spread adds its fragment's
summary arithmetically instead of walking it again. A fragment spread twice in each of
twenty nested fragments so reports its 2^20 fields after visiting forty-odd nodes, where
a walker that follows spreads (strawberry's depth and alias rules, graphql-core's own
rules) would visit them all. Fragment cycles are found before any summary and refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)


@dataclass(frozen=True)
class Shape:
    """A selection set as executed: every spread expanded, every count arithmetic."""

    depth: int = 0  # composite fields on the longest path, introspection excluded
    fields: int = 0
    aliases: int = 0
    directives: int = 0
    spreads: int = 0  # fragment spreads and inline fragments

    def __add__(self, other: Shape) -> Shape:
        return Shape(
            max(self.depth, other.depth),
            self.fields + other.fields,
            self.aliases + other.aliases,
            self.directives + other.directives,
            self.spreads + other.spreads,
        )


class FragmentCycle(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"Cannot spread fragment '{name}' within itself.")
        self.name = name


@dataclass
class DocumentShapes:
    """The shape of each operation of a document, and how many AST nodes measuring took."""

    operations: dict[str | None, Shape]
    fragment_order: list[str]  # each fragment after those it spreads
    visited: int


@dataclass
class _Measurer:
    fragments: dict[str, FragmentDefinitionNode]
    shapes: dict[str, Shape] = field(default_factory=dict)
    visited: int = 0

    def selection_set(self, selection_set: SelectionSetNode) -> Shape:
        total = Shape()
        for selection in selection_set.selections:
            self.visited += 1
            directives = len(selection.directives or ())
            if isinstance(selection, FieldNode):
                below = Shape()
                if selection.selection_set is not None:
                    below = self.selection_set(selection.selection_set)
                # Introspection's own nesting is capped by graphql-core's
                # MaxIntrospectionDepthRule; GraphiQL's query needs more than ours.
                introspection = selection.name.value.startswith("__")
                nested = selection.selection_set is not None and not introspection
                total += Shape(
                    depth=1 + below.depth if nested else 0,
                    fields=1 + below.fields,
                    aliases=(selection.alias is not None) + below.aliases,
                    directives=directives + below.directives,
                    spreads=below.spreads,
                )
            elif isinstance(selection, FragmentSpreadNode):
                # An unknown fragment adds nothing: KnownFragmentNamesRule refuses it.
                spread = self.shapes.get(selection.name.value, Shape())
                total += spread + Shape(directives=directives, spreads=1)
            elif isinstance(selection, InlineFragmentNode):
                inline = self.selection_set(selection.selection_set)
                total += inline + Shape(directives=directives, spreads=1)
        return total

    def spread_names(self, selection_set: SelectionSetNode) -> list[str]:
        """Fragments spread anywhere in this selection set, without following spreads."""
        names: list[str] = []
        pending = [selection_set]
        while pending:
            for selection in pending.pop().selections:
                self.visited += 1
                if isinstance(selection, FragmentSpreadNode):
                    names.append(selection.name.value)
                elif (
                    isinstance(selection, FieldNode | InlineFragmentNode)
                    and selection.selection_set is not None
                ):
                    pending.append(selection.selection_set)
        return names

    def dependency_order(self) -> list[str]:
        """Fragment names, each after every fragment it spreads; FragmentCycle on a cycle.

        Iterative (a chain of 500 fragments must not exhaust Python's stack).
        """
        uses = {
            name: [
                used for used in self.spread_names(fragment.selection_set) if used in self.fragments
            ]
            for name, fragment in self.fragments.items()
        }
        order: list[str] = []
        state: dict[str, str] = {}  # "open" while its dependencies are visited, then "done"
        for root in self.fragments:
            if root in state:
                continue
            stack = [(root, iter(uses[root]))]
            state[root] = "open"
            while stack:
                name, pending = stack[-1]
                used = next(pending, None)
                if used is None:
                    stack.pop()
                    state[name] = "done"
                    order.append(name)
                elif state.get(used) == "open":
                    raise FragmentCycle(used)
                elif used not in state:
                    state[used] = "open"
                    stack.append((used, iter(uses[used])))
        return order


def measure_document(document: DocumentNode) -> DocumentShapes:
    """Every operation's shape (keyed by name; None for an anonymous one).

    Raises FragmentCycle for a document whose fragments spread each other in a cycle.
    """
    fragments: dict[str, FragmentDefinitionNode] = {}
    operations: list[OperationDefinitionNode] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
        elif isinstance(definition, OperationDefinitionNode):
            operations.append(definition)
    measurer = _Measurer(fragments)
    order = measurer.dependency_order()
    for name in order:
        fragment = fragments[name]
        measurer.shapes[name] = measurer.selection_set(fragment.selection_set) + Shape(
            directives=len(fragment.directives or ())
        )
    shapes: dict[str | None, Shape] = {}
    for operation in operations:
        key = operation.name.value if operation.name else None
        shapes.setdefault(
            key,
            measurer.selection_set(operation.selection_set)
            + Shape(directives=len(operation.directives or ())),
        )
    return DocumentShapes(shapes, order, measurer.visited)


def repeated_field_pairs(document: DocumentNode, operation: OperationDefinitionNode) -> int:
    """Pairs of fields that answer to the same key at the same place, fragments expanded.

    graphql-core's OverlappingFieldsCanBeMergedRule compares every such pair (and their
    subselections): 250 copies of `me { id }` took it 220 ms. Call this only on an
    operation whose expanded size is within the limits: it walks the expansion.
    """
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
    pairs = 0
    places: list[list[SelectionSetNode]] = [[operation.selection_set]]
    while places:
        by_key: dict[str, list[FieldNode]] = {}
        spread: set[str] = set()  # graphql-core too compares a fragment once per place
        pending = places.pop()
        while pending:
            for selection in pending.pop().selections:
                if isinstance(selection, FieldNode):
                    key = (selection.alias or selection.name).value
                    by_key.setdefault(key, []).append(selection)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    if name in fragments and name not in spread:
                        spread.add(name)
                        pending.append(fragments[name].selection_set)
                elif isinstance(selection, InlineFragmentNode):
                    pending.append(selection.selection_set)
        for same in by_key.values():
            pairs += len(same) * (len(same) - 1) // 2
            below = [node.selection_set for node in same if node.selection_set is not None]
            if below:
                places.append(below)
    return pairs
