"""Assembles the strawberry schema with its limits and caches."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import strawberry
from graphql import GraphQLError
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.customers import CustomerMutations
from schema.execution import PlainDataExecutionContext
from schema.extensions import ConsistencyReport, ErrorCodes
from schema.observe import Observed, OperationObserver
from schema.orders import OrderMutations
from schema.products import ProductMutations
from schema.queries import Query
from schema.scalars import SCALAR_MAP
from schema.subscriptions import Subscription


@strawberry.type
class Mutation(CustomerMutations, ProductMutations, OrderMutations):
    pass


class ShopSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Silent: ErrorCodes logs the unexpected errors, with their correlation ids."""


def validation_rules(
    max_depth: int, max_aliases: int, introspection: bool
) -> list[type[ASTValidationRule]]:
    """The limit rules, built once per schema.

    ValidationCache keys its cache on the rule classes too. QueryDepthLimiter and
    MaxAliasesLimiter make a new rule class each time they are instantiated, and
    strawberry instantiates extension factories per request: the cache then missed on
    every request and validation took two thirds of a simple query's time. Built here
    once, the same classes reach every request and a repeated query validates once.
    """
    rules = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


def _hooks_fields(factory: Callable[[], SchemaExtension]) -> bool:
    """Whether an extension (class or partial of one) overrides the per-field hook."""
    extension = factory.func if isinstance(factory, partial) else factory
    return getattr(extension, "resolve", SchemaExtension.resolve) is not SchemaExtension.resolve


def build_schema(
    *,
    max_depth: int = 10,
    max_tokens: int = 2000,
    max_aliases: int = 15,
    introspection: bool = True,
    plain_data_shortcut: bool = True,
    observer: OperationObserver | None = None,
) -> strawberry.Schema:
    """The API schema; limits come from settings.

    `plain_data_shortcut=False` executes every field through graphql-core's standard
    pipeline (schema/execution.py explains the shortcut; tests compare the two).
    `observer` hears of every operation (the app's metrics), through ErrorCodes' hooks.
    """
    error_codes: Callable[[], SchemaExtension] = (
        ErrorCodes if observer is None else partial(Observed, observer=observer)
    )
    extensions: list[Callable[[], SchemaExtension]] = [
        error_codes,
        ConsistencyReport,
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        ParserCache,
        partial(AddValidationRules, validation_rules(max_depth, max_aliases, introspection)),
        ValidationCache,
    ]
    if plain_data_shortcut and any(map(_hooks_fields, extensions)):
        raise ValueError("field-level extension hooks would be skipped by the plain-data shortcut")
    return ShopSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=PlainDataExecutionContext if plain_data_shortcut else None,
    )
