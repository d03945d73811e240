"""Production settings turn introspection and field suggestions off; development keeps
them for GraphiQL and for people exploring the API."""

from __future__ import annotations

from schema.build import build_schema

INTROSPECTION = "{ __schema { queryType { name } } }"
MISSPELLED = "{ produts { edges { node { id } } } }"


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


def test_field_suggestions_are_given_only_when_turned_on() -> None:
    suggesting = build_schema(suggestions=True).execute_sync(MISSPELLED)
    silent = build_schema(suggestions=False).execute_sync(MISSPELLED)

    assert suggesting.errors is not None
    assert silent.errors is not None
    assert "Did you mean 'products'" in suggesting.errors[0].message
    assert [e.message for e in silent.errors] == ["Cannot query field 'produts' on type 'Query'."]
    assert silent.errors[0].extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}


def test_production_defaults_turn_field_suggestions_off() -> None:
    from app.settings import Settings

    production = Settings(_env_file=None, environment="production", jwt_secret="x" * 40)  # type: ignore[call-arg]
    development = Settings(_env_file=None)  # type: ignore[call-arg]

    assert (production.field_suggestions_enabled, development.field_suggestions_enabled) == (
        False,
        True,
    )
