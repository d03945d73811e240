"""The `possibleTypes` map Apollo Client's InMemoryCache needs to match fragments on
unions and interfaces (`... on UserError`, `... on OrderSuccess`) without introspecting."""

from __future__ import annotations

import json

from graphql import GraphQLInterfaceType, GraphQLSchema, GraphQLUnionType


def possible_types(schema: GraphQLSchema) -> dict[str, list[str]]:
    """Every union and interface with the object types that may stand for it, sorted."""
    found: dict[str, list[str]] = {}
    for name, named in schema.type_map.items():
        if name.startswith("__"):
            continue  # introspection's own types: not the API's
        if isinstance(named, GraphQLUnionType | GraphQLInterfaceType):
            found[name] = sorted(member.name for member in schema.get_possible_types(named))
    return dict(sorted(found.items()))


def possible_types_json(schema: GraphQLSchema) -> str:
    """The map as the committed possible-types.json holds it."""
    return json.dumps(possible_types(schema), indent=2) + "\n"
