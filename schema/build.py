"""Assembles the strawberry schema with its limits and caches."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from schema.compiled.operations import CompiledOperations
from schema.consistency import ConsistencyReport
from schema.customers import CustomerMutations
from schema.execution import PlainDataExecutionContext
from schema.extensions import ErrorCodes
from schema.limits import Budgets, DocumentLimits, LimitsState, QueryLimits
from schema.observe import Observed, OperationObserver
from schema.orders import OrderMutations
from schema.plain_arguments import RefuseControlCharacters
from schema.products import ProductMutations
from schema.queries import Query
from schema.scalars import SCALAR_MAP
from schema.subscriptions import Subscription
from schema.transports import subscription_refused, without_subscriptions


@strawberry.type
class Mutation(CustomerMutations, ProductMutations, OrderMutations):
    pass


class ShopSchema(strawberry.Schema):
    # Set by build_schema: what compiled operations (schema/compiled/) share with it.
    limits_state: LimitsState
    observer: OperationObserver | None = None

    def compiled_operations(self) -> CompiledOperations:
        """A registry of compiled operations for one app over this schema."""
        return CompiledOperations(self._schema, self.limits_state, self.observer)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Silent: ErrorCodes logs the unexpected errors, with their correlation ids."""

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Plain HTTP's execution: a subscription is refused (schema.transports)."""
        allowed = without_subscriptions(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        try:
            result = await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed,
                operation_extensions,
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type is not OperationType.SUBSCRIPTION:
                raise
            return subscription_refused()
        if result.data is None and result.extensions and "consistency" in result.extensions:
            # No data, nothing read to report on; and which reads had finished when a
            # failing non-null field cancelled its siblings is a race (graphql-core).
            result.extensions = {k: v for k, v in result.extensions.items() if k != "consistency"}
        return result


def _hooks_fields(factory: Callable[[], SchemaExtension]) -> bool:
    """Whether an extension (class or partial of one) overrides the per-field hook."""
    extension = factory.func if isinstance(factory, partial) else factory
    return getattr(extension, "resolve", SchemaExtension.resolve) is not SchemaExtension.resolve


def build_schema(
    *,
    limits: QueryLimits | None = None,
    budgets: Budgets | None = None,
    introspection: bool = True,
    suggestions: bool = True,
    plain_data_shortcut: bool = True,
    observer: OperationObserver | None = None,
) -> ShopSchema:
    """The API schema; limits, budgets and what production hides come from settings.

    DocumentLimits validates (after its linear limits) and caches per query text: it
    takes the place of ValidationCache and of strawberry's depth and alias rules.

    `plain_data_shortcut=False` executes every field through graphql-core's standard
    pipeline (schema/execution.py explains the shortcut; tests compare the two).
    `observer` hears of every operation (the app's metrics), through ErrorCodes' hooks.
    """
    limits = limits or QueryLimits()
    state = LimitsState(limits, budgets or Budgets(), introspection, suggestions)
    error_codes: Callable[[], SchemaExtension] = (
        ErrorCodes if observer is None else partial(Observed, observer=observer)
    )
    extensions: list[Callable[[], SchemaExtension]] = [
        error_codes,
        ConsistencyReport,
        partial(MaxTokensLimiter, max_token_count=limits.max_tokens),
        # Before ParserCache: it refuses an over-long text before anything parses it.
        partial(DocumentLimits, state),
        ParserCache,
        RefuseControlCharacters,
    ]
    if plain_data_shortcut and any(map(_hooks_fields, extensions)):
        raise ValueError("field-level extension hooks would be skipped by the plain-data shortcut")
    schema = ShopSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=PlainDataExecutionContext if plain_data_shortcut else None,
    )
    schema.limits_state, schema.observer = state, observer
    return schema
