"""An execution context that completes plain data without graphql-core's per-field machinery.

Most of a read's response is plain data: dataclass attributes with no resolver (an
order's status, its lines, each line's sku). graphql-core still runs its full field
pipeline for each of them (resolve info, resolver wrapper, awaitable checks, completion
dispatch): with 20 orders of 5 lines that was over 40% of a `myOrders` request, more
than MongoDB and the response write together.

For an object whose requested fields are all plain, `execute_fields` here builds the
result directly: attribute, then the leaf type's own `serialize`, nested objects and
lists recursively, over the same memoized field collection (so aliases, fragments,
`@skip`/`@include` and `__typename` behave as before). Anything unusual (a null in a
non-null position, a serializer that refuses a value, a field with a resolver, deferred
fragments) abandons the shortcut for that object, and graphql-core redoes it the
standard way, errors and all: the shortcut only ever produces what the standard path
would. Field-level extension hooks (`SchemaExtension.resolve`) would be bypassed, so
build_schema refuses to combine them with this class.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField


class _Abandon(Exception):
    """The shortcut cannot complete this object exactly as graphql-core would."""


Getter = Callable[[Any], Any]
# Per GraphQL object type: how to read each plain field (GraphQL name -> getter).
_PLAIN: weakref.WeakKeyDictionary[GraphQLObjectType, dict[str, Getter]] = (
    weakref.WeakKeyDictionary()
)


def _getter(definition: StrawberryField) -> Getter:
    """What strawberry does for a field without a resolver (StrawberryField.get_result)."""
    default_resolver, attribute = definition.default_resolver, definition.python_name
    return lambda source: default_resolver(source, attribute)


def plain_fields(parent_type: GraphQLObjectType) -> dict[str, Getter]:
    found = _PLAIN.get(parent_type)
    if found is None:
        found = {}
        for name, field in parent_type.fields.items():
            definition = field.extensions.get("strawberry-definition")
            if (
                isinstance(definition, StrawberryField)
                and definition.base_resolver is None
                and not definition.extensions
                and not definition.permission_classes
                and not field.args
                and definition.python_name is not None
            ):
                found[name] = _getter(definition)
        _PLAIN[parent_type] = found
    return found


class PlainDataExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> Any:
        """A subscription event's executor, with a field-collection memo of its own.

        graphql-core 3.3 copies the subscription's executor for each event (shallowly)
        and memoizes collected subfields keyed on id() of field lists it builds anew per
        event, keeping each list alive in the entry: the memo never hits and never
        shrinks, about 1.7 KB per message for as long as the subscription lives (B6 saw
        the API grow 100 MB in ten minutes). A fresh memo per event is freed with it.
        """
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        if position_context is None:
            # _Abandon, or whatever a getter or serializer raised: the standard path
            # below redoes this object and reports any error as graphql-core does.
            with contextlib.suppress(Exception):
                return self._plain_object(parent_type, source_value, grouped_field_set)
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def _plain_object(
        self, parent_type: GraphQLObjectType, source: Any, grouped_field_set: Any
    ) -> dict[str, Any]:
        plain = plain_fields(parent_type)
        results: dict[str, Any] = {}
        for response_name, field_details_list in grouped_field_set.items():
            name = field_details_list[0].node.name.value
            if name == "__typename":
                results[response_name] = parent_type.name
                continue
            getter = plain.get(name)
            if getter is None:
                raise _Abandon
            field_type = parent_type.fields[name].type
            value = getter(source)
            results[response_name] = self._plain_value(field_type, field_details_list, value)
        return results

    def _plain_value(
        self, field_type: GraphQLOutputType, field_details_list: Any, value: Any
    ) -> Any:
        if isinstance(field_type, GraphQLNonNull):
            if value is None:
                raise _Abandon
            field_type = field_type.of_type
        if value is None:
            return None
        if isinstance(field_type, GraphQLScalarType | GraphQLEnumType):
            serialized = field_type.serialize(value)
            if serialized is None or serialized is Undefined:
                raise _Abandon
            return serialized
        if isinstance(field_type, GraphQLList):
            if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
                raise _Abandon
            item_type = field_type.of_type
            return [self._plain_value(item_type, field_details_list, item) for item in value]
        if isinstance(field_type, GraphQLObjectType):
            if field_type.is_type_of is not None and not field_type.is_type_of(value, None):  # type: ignore[arg-type]
                raise _Abandon
            grouped_field_set, new_defer_usages, _ = self.collect_subfields(
                field_type, field_details_list
            )
            if new_defer_usages:
                raise _Abandon
            return self._plain_object(field_type, value, grouped_field_set)
        raise _Abandon  # interfaces and unions need their runtime type resolved
