"""Production settings turn introspection off; development keeps it for GraphiQL."""

from __future__ import annotations

from schema.build import build_schema

INTROSPECTION = "{ __schema { queryType { name } } }"


def test_introspection_is_refused_when_turned_off() -> None:
    result = build_schema(introspection=False).execute_sync(INTROSPECTION)

    assert result.errors
    assert "introspection" in result.errors[0].message.lower()
    assert result.errors[0].extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}


def test_introspection_answers_in_development() -> None:
    result = build_schema(introspection=True).execute_sync(INTROSPECTION)

    assert result.errors is None
    assert result.data == {"__schema": {"queryType": {"name": "Query"}}}


def test_production_defaults_turn_graphiql_and_introspection_off() -> None:
    from app.settings import Settings

    production = Settings(_env_file=None, environment="production", jwt_secret="x" * 40)  # type: ignore[call-arg]
    development = Settings(_env_file=None)  # type: ignore[call-arg]

    assert (production.graphiql_enabled, production.introspection_enabled) == (False, False)
    assert (development.graphiql_enabled, development.introspection_enabled) == (True, True)
