"""An operation compiled into emitters: fields collected once, documents read directly.

Fields are collected with graphql-core's own `collect_fields`/`collect_subfields`, so
aliases, fragments, type conditions, merging and `@skip`/`@include` mean exactly what they
mean on the standard path. `@skip`/`@include` may name variables: a plan is specialized
once per combination of those variables' values (there are few), and the rest of a
request's variables are coerced per request by graphql-core's `get_variable_values`.

An emitter builds one object's plain data from its document; a value it cannot serve as
graphql-core would (a null in a non-null place, a value its serializer refuses, a key the
document lacks) raises, and the request takes the standard path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from graphql.language import Visitor

from schema.compiled.readers import DOCUMENT_KEYS, PLACED_FIELDS

Document = Mapping[str, Any]
# (document, the id of the document that owns it, its 1-based place in the owner's list)
Emitter = Callable[[Document, str, int], Any]
_CONDITIONS = frozenset({"skip", "include"})


class Abandon(Exception):
    """This request is not one the plan serves exactly: the standard path answers it."""


@dataclass(frozen=True)
class ObjectPlan:
    """How to build one object's response data from its document."""

    emit: Emitter
    # Every document path the emitter reads, dotted from the document's root.
    paths: frozenset[str]


@dataclass(frozen=True)
class RootPlan:
    response_key: str
    field_name: str
    node: FieldNode
    definition: GraphQLField
    result: ObjectPlan | None  # None: `__typename`
    non_null: bool = False  # a null answer would be an error: the standard path gives it

    def projection(self, required: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The MongoDB projection for this field's document: what the plan reads and what
        `required` adds (authorization's keys), without paths inside other paths."""
        paths = set(required) | (self.result.paths if self.result else set())
        return tuple(sorted(p for p in paths if not any(p.startswith(q + ".") for q in paths)))


@dataclass(frozen=True)
class Specialized:
    """The plan for one combination of the condition variables' values."""

    roots: tuple[RootPlan, ...]


@dataclass
class CompiledOperation:
    schema: GraphQLSchema
    document: DocumentNode
    operation: OperationDefinitionNode
    name: str | None
    cost: int
    # The root fields a plan may serve (run.py serves them), by name.
    root_fields: frozenset[str]
    condition_variables: tuple[str, ...] = ()
    _fragments: dict[str, FragmentDetails] = field(default_factory=dict)
    _specialized: dict[tuple[Any, ...], Specialized | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._fragments = {
            d.name.value: FragmentDetails(d)
            for d in self.document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        self.condition_variables = condition_variables(self.document)

    def specialize(self, variables: VariableValues) -> Specialized | None:
        """The plan for these (coerced) variables; None when it cannot be compiled."""
        key = tuple(variables.coerced.get(name) for name in self.condition_variables)
        if key not in self._specialized:
            self._specialized[key] = self._compile(variables)
        return self._specialized[key]

    def _compile(self, variables: VariableValues) -> Specialized | None:
        query_type = self.schema.query_type
        assert query_type is not None
        collected = collect_fields(
            self.schema, self._fragments, variables, query_type, self.operation
        )
        if collected.new_defer_usages:
            return None
        roots: list[RootPlan] = []
        for response_key, details in collected.grouped_field_set.items():
            name = details[0].node.name.value
            if name == "__typename":
                roots.append(RootPlan(response_key, name, details[0].node, _TYPENAME, None))
                continue
            definition = query_type.fields.get(name)
            if name not in self.root_fields or definition is None:
                return None
            non_null = isinstance(definition.type, GraphQLNonNull)
            result_type = definition.type.of_type if non_null else definition.type
            if not isinstance(result_type, GraphQLObjectType):
                return None
            result = self._object(result_type, details, variables)
            if result is None:
                return None
            roots.append(
                RootPlan(response_key, name, details[0].node, definition, result, non_null)
            )
        return Specialized(tuple(roots))

    def _object(
        self,
        object_type: GraphQLObjectType,
        details: list[FieldDetails],
        variables: VariableValues,
    ) -> ObjectPlan | None:
        keys = DOCUMENT_KEYS.get(object_type.name)
        if keys is None:
            return None
        collected = collect_subfields(
            self.schema, self._fragments, variables, self.operation, object_type, details
        )
        if collected.new_defer_usages:
            return None
        steps: list[tuple[str, Emitter]] = []
        paths: set[str] = set()
        for response_key, field_details in collected.grouped_field_set.items():
            name = field_details[0].node.name.value
            if name == "__typename":
                steps.append((response_key, _constant(object_type.name)))
                continue
            definition = object_type.fields.get(name)
            if definition is None or definition.args:
                return None
            placed = PLACED_FIELDS.get((object_type.name, name))
            if placed is not None:
                steps.append((response_key, _placed(placed, definition.type)))
                continue
            key = keys.get(name)
            if key is None:
                return None
            value = self._value(definition.type, key, field_details, variables)
            if value is None:
                return None
            emit, value_paths = value
            steps.append((response_key, emit))
            paths |= value_paths
        return ObjectPlan(_object_emitter(tuple(steps)), frozenset(paths))

    def _value(
        self,
        value_type: GraphQLOutputType,
        key: str,
        details: list[FieldDetails],
        variables: VariableValues,
    ) -> tuple[Emitter, set[str]] | None:
        non_null = isinstance(value_type, GraphQLNonNull)
        inner = value_type.of_type if isinstance(value_type, GraphQLNonNull) else value_type
        if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            return _leaf(key, _serializer(inner), non_null), {key}
        if isinstance(inner, GraphQLObjectType):
            nested = self._object(inner, details, variables)
            if nested is None:
                return None
            return _nested(key, nested.emit, non_null), _below(key, nested.paths)
        if isinstance(inner, GraphQLList):
            item = inner.of_type
            if not (
                isinstance(item, GraphQLNonNull) and isinstance(item.of_type, GraphQLObjectType)
            ):
                return None
            nested = self._object(item.of_type, details, variables)
            if nested is None:
                return None
            return _listed(key, nested.emit, non_null), _below(key, nested.paths)
        return None


_TYPENAME = GraphQLField(GraphQLNonNull(GraphQLString))


def condition_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables `@skip`/`@include` read anywhere in the document, sorted."""
    found: set[str] = set()

    class _Conditions(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            if node.name.value in _CONDITIONS:
                for argument in node.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        found.add(argument.value.name.value)
                    elif not isinstance(argument.value, BooleanValueNode):
                        found.add("")  # validation refuses it; never reached

    visit(document, _Conditions())
    return tuple(sorted(found))


def is_query(operation: OperationDefinitionNode) -> bool:
    return operation.operation is OperationType.QUERY


def _below(key: str, paths: frozenset[str]) -> set[str]:
    return {f"{key}.{path}" for path in paths} or {key}


def _serializer(leaf: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any]:
    if isinstance(leaf, GraphQLScalarType):
        serialize = leaf.serialize

        def scalar(value: Any) -> Any:
            serialized = serialize(value)
            if serialized is None:
                raise Abandon
            return serialized

        return scalar
    # A document holds an enum member's value ("PLACED"); graphql-core serializes the
    # member strawberry's constructors make of it. Unknown values take the standard path.
    names: dict[Any, str] = {}
    for name, enum_value in leaf.values.items():
        member = enum_value.value
        names[member.value if isinstance(member, Enum) else member] = name
    return names.__getitem__


def _constant(value: str) -> Emitter:
    return lambda _document, _owner, _place: value


def _leaf(key: str, serialize: Callable[[Any], Any], non_null: bool) -> Emitter:
    def emit(document: Document, _owner: str, _place: int) -> Any:
        value = document[key]
        if value is None:
            if non_null:
                raise Abandon
            return None
        return serialize(value)

    return emit


def _placed(derive: Callable[[str, int], str], value_type: GraphQLOutputType) -> Emitter:
    inner = value_type.of_type if isinstance(value_type, GraphQLNonNull) else value_type
    assert isinstance(inner, GraphQLScalarType)
    serialize = _serializer(inner)
    return lambda _document, owner, place: serialize(derive(owner, place))


def _nested(key: str, emit: Emitter, non_null: bool) -> Emitter:
    def nested(document: Document, owner: str, place: int) -> Any:
        value = document[key]
        if value is None:
            if non_null:
                raise Abandon
            return None
        return emit(value, owner, place)

    return nested


def _listed(key: str, emit: Emitter, non_null: bool) -> Emitter:
    def listed(document: Document, owner: str, _place: int) -> Any:
        items = document[key]
        if items is None:
            if non_null:
                raise Abandon
            return None
        if not isinstance(items, list):
            raise Abandon
        # Items are placed in the nearest document with an id (an order's lines in the
        # order; a page, which has none, passes its owner on).
        owner = document.get("_id", owner)
        return [emit(item, owner, place) for place, item in enumerate(items, start=1)]

    return listed


def _object_emitter(steps: tuple[tuple[str, Emitter], ...]) -> Emitter:
    def emit(document: Document, owner: str, place: int) -> dict[str, Any]:
        if not isinstance(document, Mapping):
            raise Abandon
        return {key: step(document, owner, place) for key, step in steps}

    return emit
