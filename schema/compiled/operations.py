"""The compiled operations of one process: prepared on an operation's second sighting,
then served without strawberry's or graphql-core's execution.

A text is compiled only once the standard path has measured, priced and validated it
(DocumentLimits keeps that per text in its LimitsState): the compiled path inherits those
verdicts instead of repeating them, and a text the standard path refused is never
compiled. A text seen once costs a dictionary entry, so a client sending one-off
documents pays nothing for the compiler.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLSchema, OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values

from schema.compiled.plan import Abandon, CompiledOperation, is_query
from schema.compiled.run import ROOT_FIELDS, run_plan
from schema.context import Context
from schema.limits import LimitsState
from schema.limits.costs import operation_cost
from schema.lru import Lru
from schema.observe import ANONYMOUS, OperationObserver, OperationReport
from schema.plain_arguments import in_literals, in_variables

PLANS = 256
SIGHTINGS = 4096
Key = tuple[str, str | None]


@dataclass
class CompiledOperations:
    schema: GraphQLSchema
    limits: LimitsState
    observer: OperationObserver | None = None
    # (text, operation name) -> its plan, or False when it cannot be compiled.
    _plans: Lru[Key, CompiledOperation | bool] = field(default_factory=lambda: Lru(PLANS))
    _seen: Lru[Key, bool] = field(default_factory=lambda: Lru(SIGHTINGS))

    def prepared(self, query: str, operation_name: str | None) -> CompiledOperation | None:
        """The plan of this operation; None on its first sighting or when it cannot be
        compiled (the standard path serves it)."""
        key = (query, operation_name)
        plan = self._plans.get(key)
        if plan is not None:
            return plan if isinstance(plan, CompiledOperation) else None
        if not self._seen.get(key):
            self._seen.put(key, True)
            return None
        compiled = self._compile(query, operation_name)
        if compiled is None:
            return None
        self._plans.put(key, compiled)
        return compiled if isinstance(compiled, CompiledOperation) else None

    async def execute(
        self, plan: CompiledOperation, variables: dict[str, Any] | None, context: Context
    ) -> dict[str, Any] | None:
        """The response body, as the standard path would give it; None when the standard
        path must answer instead (nothing this did is visible: it only read)."""
        started = time.perf_counter()
        try:
            body = await self._execute(plan, variables or {}, context)
        except Abandon:
            return None
        if self.observer is not None:
            self.observer.operation_finished(
                OperationReport(
                    name=plan.name or ANONYMOUS,
                    kind="query",
                    seconds=time.perf_counter() - started,
                    error_codes=(),
                    consistency=context.served_from.least_fresh(),
                    compiled=True,
                )
            )
        return body

    async def _execute(
        self, plan: CompiledOperation, variables: dict[str, Any], context: Context
    ) -> dict[str, Any]:
        if in_variables(plan.document, plan.name, variables) is not None:
            raise Abandon  # RefuseControlCharacters' BAD_USER_INPUT
        coerced = get_variable_values(
            self.schema, plan.operation.variable_definitions or (), variables
        )
        if isinstance(coerced, list):
            raise Abandon  # coercion errors: the standard path words them
        specialized = plan.specialize(coerced)
        if specialized is None:
            raise Abandon
        try:
            actor = context.actor()
        except Exception as exc:  # a bad token: the standard path refuses it
            raise Abandon from exc
        budget = self.limits.budgets.for_role(None if actor is None else str(actor.role))
        if plan.cost > budget:
            raise Abandon
        data = await run_plan(specialized, coerced, context)
        extensions: dict[str, Any] = {}
        try:
            report = context.served_from.report(context.sent_consistency_token())
        except Exception as exc:
            raise Abandon from exc
        if report is not None:
            extensions["consistency"] = report
        extensions["cost"] = {"requested": plan.cost, "budget": budget}
        return {"data": data, "extensions": extensions}

    def _compile(self, query: str, operation_name: str | None) -> CompiledOperation | bool | None:
        """A plan; False when this operation cannot be compiled; None when the standard
        path's verdicts on the text are no longer cached (try again on a later sighting)."""
        entry = self.limits.documents.get(query)
        if entry is None or entry.validation is None:
            return None
        if entry.validation or entry.size_variables or isinstance(entry.shapes, Exception):
            return False
        document = parse(query)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None and len(operations) != 1:
            return False
        operation = next(
            (
                op
                for op in operations
                if operation_name is None or (op.name and op.name.value == operation_name)
            ),
            None,
        )
        if operation is None or not is_query(operation) or operation.directives:
            return False
        if in_literals(document, operation_name) is not None:
            return False  # RefuseControlCharacters refuses every request of it
        name = operation.name.value if operation.name else None
        if entry.verdicts.get(name) != []:
            return False if name in entry.verdicts else None
        cost = operation_cost(self.schema, document, operation, {}, entry.shapes.fragment_order)
        return CompiledOperation(self.schema, document, operation, name, cost, ROOT_FIELDS)
