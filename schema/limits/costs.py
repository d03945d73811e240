"""What an operation costs to answer, before it runs (DESIGN.md section 8; decision 0021).

A field costs its own work (a read-model round trip, a write transaction, a password
hash) plus what it returns: one per object built, nothing per scalar. A list multiplies
what each item costs by how many items it can hold: the page size a client asked for
(`first` or `last`, `days`, `limit`, from literals or the request's variables), or a fixed
maximum (an order's 50 lines). A connection's page size counts the items of its `edges`;
its `totalCount` is one more read-model round trip (decision 0048).
Fragments are priced once per request each, like document.py measures them once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLCompositeType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)

OBJECT = 1  # an object built from data already at hand
READ = 10  # a round trip to the read model (or its write-store fallback)
WRITE = 20  # a write transaction that appends to the event log
PASSWORD_HASH = 1000  # an argon2 hash: tens of milliseconds of CPU, as much as 20 reads
INTROSPECTION = READ  # answered from memory; its nesting is capped by graphql-core


@dataclass(frozen=True)
class Size:
    """How many items a list field holds: an argument's value within 0..maximum.

    With `also`, the largest of the named arguments the request passes counts: a page of
    `last: 100` costs what `first: 100` does.
    """

    argument: str | None
    default: int
    maximum: int
    also: tuple[str, ...] = ()

    def arguments(self) -> tuple[str, ...]:
        return ((self.argument,) if self.argument else ()) + self.also


@dataclass(frozen=True)
class FieldCost:
    own: int = 0
    size: Size | None = None  # for a list field, or a connection's page
    paged: bool = False  # a connection: `size` counts the items of its `edges`
    per_page_item: bool = False  # a connection's `edges`: one per item of the page


PAGE = Size("first", 20, 100, also=("last",))
PAGED_READ = FieldCost(READ, PAGE, paged=True)
PAGE_ITEMS = FieldCost(per_page_item=True)
MUTATION = FieldCost(WRITE)
SUBSCRIPTION = FieldCost(READ)

COSTS: Mapping[str, FieldCost] = {
    "Query.node": FieldCost(READ),
    "Query.me": FieldCost(READ),
    "Query.product": FieldCost(READ),
    "Query.products": PAGED_READ,
    "Query.order": FieldCost(READ),
    "Query.myOrders": PAGED_READ,
    "Query.salesDashboard": FieldCost(READ),
    "Query.inventory": PAGED_READ,
    "Query.projections": FieldCost(READ, Size(None, 10, 10)),
    "ProductConnection.edges": PAGE_ITEMS,
    "OrderConnection.edges": PAGE_ITEMS,
    # A count the read model answers from an index (decision 0048): one more round trip.
    "ProductConnection.totalCount": FieldCost(READ),
    "OrderConnection.totalCount": FieldCost(READ),
    "Order.lines": FieldCost(size=Size(None, 50, 50)),
    # Other than their defaults, these read the dashboard again.
    "SalesDashboard.daily": FieldCost(READ, Size("days", 30, 366)),
    "SalesDashboard.topProducts": FieldCost(READ, Size("limit", 10, 100)),
    "Mutation.signUp": FieldCost(WRITE + PASSWORD_HASH),
    "Mutation.logIn": FieldCost(PASSWORD_HASH),
}
# Every other root field: a mutation writes, a subscription reads (then pushes).
ROOT_DEFAULTS: Mapping[str, FieldCost] = {
    "Query": FieldCost(READ),
    "Mutation": MUTATION,
    "Subscription": SUBSCRIPTION,
}
UNLISTED_LIST = Size(None, 100, 100)  # a list no entry sizes (unit tests keep this unused)


def field_cost(parent: str, name: str) -> FieldCost:
    return COSTS.get(f"{parent}.{name}") or ROOT_DEFAULTS.get(parent) or FieldCost()


@dataclass(frozen=True)
class _Price:
    fixed: int = 0
    per_page_item: int = 0  # scaled by the page size of the connection above

    def __add__(self, other: _Price) -> _Price:
        return _Price(self.fixed + other.fixed, self.per_page_item + other.per_page_item)


@dataclass
class _Pricer:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    priced: dict[str, _Price] = field(default_factory=dict)

    def fragment(self, name: str) -> _Price:
        price = self.priced.get(name)
        if price is None:
            fragment = self.fragments.get(name)
            on = (
                None
                if fragment is None
                else self.schema.get_type(fragment.type_condition.name.value)
            )
            price = _Price()
            if fragment is not None and is_composite_type(on):
                price = self.selection_set(fragment.selection_set, on)
            self.priced[name] = price
        return price

    def selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLCompositeType
    ) -> _Price:
        total = _Price()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                on = parent
                if selection.type_condition is not None:
                    named = self.schema.get_type(selection.type_condition.name.value)
                    if not is_composite_type(named):
                        continue  # FragmentsOnCompositeTypesRule refuses it
                    on = named
                total += self.selection_set(selection.selection_set, on)
        return total

    def field(self, node: FieldNode, parent: GraphQLCompositeType) -> _Price:
        name = node.name.value
        if name in ("__schema", "__type"):
            return _Price(INTROSPECTION)
        if (
            not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
            or name not in parent.fields
        ):
            return _Price()  # __typename, or a field validation refuses
        field_type: GraphQLOutputType = parent.fields[name].type
        rule = field_cost(parent.name, name)
        named = get_named_type(field_type)
        below = _Price()
        if node.selection_set is not None and is_composite_type(named):
            below = self.selection_set(node.selection_set, named)
        item = (OBJECT if is_composite_type(named) else 0) + below.fixed
        if rule.paged:
            page = self.size(node, rule.size or PAGE)
            # The connection object only wraps its page: its items are the cost.
            return _Price(rule.own + below.fixed + page * below.per_page_item)
        if rule.per_page_item:
            return _Price(rule.own, item)
        if _is_list(field_type):
            return _Price(rule.own + self.size(node, rule.size or UNLISTED_LIST) * item)
        return _Price(rule.own + item)

    def size(self, node: FieldNode, size: Size) -> int:
        given: list[int] = []
        for argument in node.arguments or ():
            if argument.name.value in size.arguments():
                value: Any = None
                if isinstance(argument.value, IntValueNode):
                    value = int(argument.value.value)
                elif isinstance(argument.value, VariableNode):
                    value = self.variables.get(argument.value.name.value)
                if isinstance(value, int) and not isinstance(value, bool):
                    given.append(value)
        # Absent, null (the resolvers' default) or refused anyway: the default.
        count = max(given) if given else size.default
        return min(max(count, 0), size.maximum)


def _is_list(field_type: GraphQLOutputType) -> bool:
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return isinstance(field_type, GraphQLList)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    fragment_order: list[str],
) -> int:
    """The operation's cost with these variables.

    `fragment_order` lists each fragment after those it spreads (document.py's order), so
    pricing never recurses from one fragment into another.
    """
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    pricer = _Pricer(schema, fragments, variables)
    for name in fragment_order:
        pricer.fragment(name)
    return pricer.selection_set(operation.selection_set, root).fixed


def size_variables(document: DocumentNode) -> frozenset[str]:
    """Variables passed to any argument a Size reads: the ones a cost depends on."""
    arguments = {name for rule in COSTS.values() if rule.size for name in rule.size.arguments()}
    arguments.update(PAGE.arguments())
    names: set[str] = set()
    pending = [
        definition.selection_set
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    if argument.name.value in arguments and isinstance(
                        argument.value, VariableNode
                    ):
                        names.add(argument.value.name.value)
            if (
                isinstance(selection, FieldNode | InlineFragmentNode)
                and selection.selection_set is not None
            ):
                pending.append(selection.selection_set)
    return frozenset(names)
