"""Refuses documents over the limits before graphql-core validates them, then prices them.

One extension takes the place of strawberry's QueryDepthLimiter, MaxAliasesLimiter,
AddValidationRules and ValidationCache: the limit rules walked every fragment spread
again (exponential in nested fragments), and graphql-core's own rules would too, so the
linear measures of document.py run first and a document over a limit never reaches them.
Measures, verdicts and graphql-core's validation are cached per query text; a cost, per
query text and the values of the variables it depends on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.schema import schema as strawberry_schema

from schema.errors import ApiError
from schema.limits.config import Budgets, QueryLimits, SharedBudget
from schema.limits.costs import operation_cost, size_variables
from schema.limits.document import (
    DocumentShapes,
    FragmentCycle,
    measure_document,
    repeated_field_pairs,
)
from schema.limits.tokens import over_token_limit
from schema.lru import Lru

CACHED_DOCUMENTS = 256
CACHED_COSTS = 64  # per document: distinct page sizes a client asks for
AMBIGUOUS = "Must provide operation name if query contains multiple operations."
_SUGGESTION = re.compile(r" ?Did you mean .*\?$")


def refusal(code: str, message: str, **details: Any) -> GraphQLError:
    """A top-level error whose code ErrorCodes keeps, with details in its extensions."""
    return GraphQLError(message, original_error=ApiError(code, message), extensions=details)


def over_limit(limit: str, measured: int, maximum: int, what: str) -> GraphQLError:
    return refusal(
        "GRAPHQL_VALIDATION_FAILED",
        f"The document has {measured} {what}; at most {maximum} are allowed.",
        limit=limit,
        measured=measured,
        maximum=maximum,
    )


@dataclass
class _Document:
    """What is known of one query text."""

    shapes: DocumentShapes | GraphQLError
    size_variables: frozenset[str]
    validation: list[GraphQLError] | None = None
    verdicts: dict[str | None, list[GraphQLError]] = field(default_factory=dict)
    costs: Lru[tuple[str | None, tuple[Any, ...]], int] = field(
        default_factory=lambda: Lru(CACHED_COSTS)
    )


@dataclass
class LimitsState:
    """Shared by every request to one schema (the extension is made per request)."""

    limits: QueryLimits
    budgets: Budgets
    introspection: bool
    suggestions: bool
    documents: Lru[str, _Document] = field(default_factory=lambda: Lru(CACHED_DOCUMENTS))

    def extra_rules(self) -> tuple[type[ASTValidationRule], ...]:
        return () if self.introspection else (NoSchemaIntrospectionCustomRule,)

    def document(self, text: str | None, document: DocumentNode) -> _Document:
        known = self.documents.get(text) if text is not None else None
        if known is not None:
            return known
        try:
            shapes: DocumentShapes | GraphQLError = measure_document(document)
        except FragmentCycle as cycle:
            shapes = refusal("GRAPHQL_VALIDATION_FAILED", str(cycle), limit="fragment cycles")
        entry = _Document(shapes, size_variables(document))
        return entry if text is None else self.documents.put(text, entry)


class DocumentLimits(SchemaExtension):
    """Pass `partial(DocumentLimits, state)`: strawberry makes one per request."""

    def __init__(self, state: LimitsState) -> None:
        super().__init__()
        self.state = state
        self.cost: int | None = None
        self.budget: int | None = None

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if not self.state.suggestions and result is not None and result.errors:
            result.errors = [without_suggestion(error) for error in result.errors]

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query or ""
        limit = self.state.limits.max_characters
        if len(query) > limit:
            raise over_limit("characters", len(query), limit, "characters")
        tokens = self.state.limits.max_tokens
        if over_token_limit(query, tokens):
            # The parser's own words and code, without paying for its Python lexer.
            raise refusal(
                "GRAPHQL_PARSE_FAILED",
                f"Syntax Error: Document contains more than {tokens} tokens. Parsing aborted.",
                limit="tokens",
                maximum=tokens,
            )
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None  # strawberry parses before it validates
        context.pre_execution_errors = self._refusals(document)
        yield

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": {"requested": self.cost, "budget": self.budget}}

    def _refusals(self, document: DocumentNode) -> list[GraphQLError]:
        context = self.execution_context
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        # strawberry runs the first operation when none is named (the spec refuses that).
        named: str | None = getattr(context, "_provided_operation_name", None)
        if named is None and len(operations) > 1:
            return [refusal("OPERATION_RESOLUTION_FAILURE", AMBIGUOUS)]
        operation = next(
            (op for op in operations if named is None or (op.name and op.name.value == named)),
            None,
        )
        if operation is None:
            return []  # strawberry answers an unknown operation name before validating
        entry = self.state.document(context.query, document)
        key = operation.name.value if operation.name else None
        verdict = entry.verdicts.get(key)
        if verdict is None:
            verdict = entry.verdicts[key] = self._verdict(entry, document, operation, key)
        if verdict:
            return verdict
        # Priced before graphql-core validates: a refusal for cost then costs next to
        # nothing, even for a document that validation would take milliseconds over.
        priced = self._priced(entry, document, operation, key)
        if priced:
            return priced
        invalid = self._validated(entry, document)
        if invalid:
            self.cost = None  # nothing runs: there is no cost to report
        elif self.cost is not None and (shared := _shared_budget(context.context)) is not None:
            shared.spent += self.cost
        return invalid

    def _verdict(
        self,
        entry: _Document,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        key: str | None,
    ) -> list[GraphQLError]:
        """The limits this operation breaks (they do not depend on variables or caller)."""
        if isinstance(entry.shapes, GraphQLError):
            return [entry.shapes]
        shape, limits = entry.shapes.operations[key], self.state.limits
        checks = [
            ("depth", shape.depth, limits.max_depth, "levels of nested selections"),
            ("aliases", shape.aliases, limits.max_aliases, "aliases"),
            ("directives", shape.directives, limits.max_directives, "directives"),
            ("fields", shape.fields, limits.max_fields, "fields once fragments are expanded"),
            (
                "fragment spreads",
                shape.spreads,
                limits.max_fields,
                "fragment spreads once expanded",
            ),
        ]
        errors = [over_limit(*check) for check in checks if check[1] > check[2]]
        if errors:
            return errors
        pairs = repeated_field_pairs(document, operation)
        if pairs > limits.max_repeated_fields:
            return [
                over_limit(
                    "repeated fields",
                    pairs,
                    limits.max_repeated_fields,
                    "pairs of fields selected under the same name at the same place",
                )
            ]
        return []

    def _validated(self, entry: _Document, document: DocumentNode) -> list[GraphQLError]:
        """graphql-core's validation of the whole document, once per query text."""
        if entry.validation is None:
            rules = (*self.execution_context.validation_rules, *self.state.extra_rules())
            found = strawberry_schema.validate_document(
                self.execution_context.schema._schema, document, rules
            )
            entry.validation = (
                found if self.state.suggestions else [without_suggestion(e) for e in found]
            )
        return entry.validation

    def _priced(
        self,
        entry: _Document,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        key: str | None,
    ) -> list[GraphQLError]:
        assert isinstance(entry.shapes, DocumentShapes)
        variables = self.execution_context.variables or {}
        values = tuple(repr(variables.get(name)) for name in sorted(entry.size_variables))
        cost = entry.costs.get((key, values))
        if cost is None:
            cost = operation_cost(
                self.execution_context.schema._schema,
                document,
                operation,
                variables,
                entry.shapes.fragment_order,
            )
            entry.costs.put((key, values), cost)
        role, bad_token = _role(self.execution_context.context)
        budget = self.state.budgets.for_role(role)
        shared = _shared_budget(self.execution_context.context)
        spent = 0 if shared is None else shared.spent
        if cost > budget - spent and bad_token is not None:
            # A valid token might have had the budget: the token is what to fix first.
            return [GraphQLError(str(bad_token), original_error=bad_token)]
        if cost > budget:
            return [
                refusal(
                    "QUERY_TOO_COMPLEX",
                    f"This operation costs {cost}, over the budget of {budget} per request: "
                    "ask for smaller pages or fewer fields, or split it.",
                    cost=cost,
                    budget=budget,
                )
            ]
        if cost > budget - spent:
            return [
                refusal(
                    "QUERY_TOO_COMPLEX",
                    f"This operation costs {cost}, over the {budget - spent} left of the "
                    f"budget of {budget} per request by the batch's earlier operations: "
                    "send it in a request of its own, or in a smaller batch.",
                    cost=cost,
                    budget=budget,
                    spent=spent,
                )
            ]
        self.cost, self.budget = cost, budget
        return []


def _role(context: object) -> tuple[str | None, ApiError | None]:
    """The caller's role (None when anonymous), and why its token was refused, if it was.

    A bad token gets the anonymous budget: fields that need a caller refuse it themselves.
    """
    actor = getattr(context, "actor", None)
    if actor is None:
        return None, None
    try:
        found = actor()
    except ApiError as refused:
        return None, refused
    role = getattr(found, "role", None)
    return (None if role is None else str(role)), None


def _shared_budget(context: object) -> SharedBudget | None:
    shared = getattr(context, "shared_budget", None)
    return shared if isinstance(shared, SharedBudget) else None


def without_suggestion(error: GraphQLError) -> GraphQLError:
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )
