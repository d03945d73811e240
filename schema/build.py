"""Assembles the strawberry schema with its limits and caches."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import strawberry
from graphql import GraphQLError
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
from schema.extensions import ConsistencyReport, ErrorCodes
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


def build_schema(
    *,
    max_depth: int = 10,
    max_tokens: int = 2000,
    max_aliases: int = 15,
    introspection: bool = True,
) -> strawberry.Schema:
    """The API schema; limits come from settings."""
    extensions: list[Callable[[], SchemaExtension]] = [
        ErrorCodes,
        ConsistencyReport,
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        ParserCache,
        partial(QueryDepthLimiter, max_depth=max_depth),
        partial(MaxAliasesLimiter, max_alias_count=max_aliases),
        ValidationCache,
    ]
    if not introspection:
        from graphql.validation import NoSchemaIntrospectionCustomRule

        extensions.append(partial(AddValidationRules, [NoSchemaIntrospectionCustomRule]))
    return ShopSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )
