"""Query and subscription arguments holding a control character are refused before anything
runs, with BAD_USER_INPUT.

Ids, cursors, consistency tokens and search terms are single-line text: a NUL or an
escape sequence in one is an attack or a bug, and PostgreSQL (the write-store fallback)
refuses NUL with an error that would reach the client as INTERNAL_SERVER_ERROR. Mutation
input is left to the domain rules (writes/rules.py), which name the offending field in a
ValidationError (or, for ids, answer NotFoundError: a malformed id names nothing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    BREAK,
    DocumentNode,
    FragmentDefinitionNode,
    StringValueNode,
    Visitor,
    get_operation_ast,
    visit,
)
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.errors import ApiError
from writes.rules import control_character


class RefuseControlCharacters(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.operation_type is not OperationType.MUTATION:
            found = in_variables(document, context.operation_name, context.variables or {})
            found = found or in_literals(document, context.operation_name)
            if found is not None:
                raise ApiError(
                    "BAD_USER_INPUT", f"arguments must not contain control characters: {found}"
                )
        yield


def in_variables(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any]
) -> str | None:
    """Where the first control character is in the operation's variables, if any."""
    operation = get_operation_ast(document, operation_name)
    for definition in (operation.variable_definitions or ()) if operation else ():
        name = definition.variable.name.value
        found = _in_value(variables.get(name))
        if found is not None:
            return f"found {found} in variable ${name}"
    return None


def _in_value(value: object) -> str | None:
    if isinstance(value, str):
        return control_character(value)
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _in_value(item)
            if found is not None:
                return found
    return None


class _FirstControlCharacter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: str | None = None

    def enter_string_value(self, node: StringValueNode, *_: object) -> object:
        found = control_character(node.value)
        if found is None:
            return None
        where = "" if node.loc is None else f" at line {node.loc.start_token.line}"
        self.found = f"found {found} in a string{where}"
        return BREAK


def in_literals(document: DocumentNode, operation_name: str | None) -> str | None:
    """The first string literal, in the operation or any fragment, with a control character."""
    operation = get_operation_ast(document, operation_name)
    visitor = _FirstControlCharacter()
    for definition in document.definitions:
        if definition is operation or isinstance(definition, FragmentDefinitionNode):
            visit(definition, visitor)
            if visitor.found is not None:
                return visitor.found
    return None
