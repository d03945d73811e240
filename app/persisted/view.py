"""The view's hook for persisted documents: each operation (a batch's too) is resolved to
its document before it runs, and an APQ registration is kept once the document ran."""

from __future__ import annotations

import dataclasses

from cross_web import AsyncHTTPRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.types import ExecutionResult

from app.graphql_http.view import GraphQLOverHTTP
from app.persisted.resolver import PersistedQueries, PersistedQueryRefused
from schema.context import Context

# A GET carrying any of these is an operation (a persisted one needs no `query`), never
# a browser asking for GraphiQL.
_OPERATION_PARAMETERS = ("query", "extensions", "documentId", "doc_id")


class PersistedDocumentsView(GraphQLOverHTTP):
    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        params = request.query_params
        return super().should_render_graphql_ide(request) and not any(
            params.get(name) for name in _OPERATION_PARAMETERS
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        persisted: PersistedQueries = request.app.state.dependencies.persisted
        try:
            resolved = await persisted.resolve(
                request_data.query,
                request_data.extensions,
                getattr(request_data, "document_id", None),
            )
        except PersistedQueryRefused as refused:
            error = GraphQLError(str(refused), extensions={"code": refused.code})
            return ExecutionResult(data=None, errors=[error])
        result = await super().execute_single(
            request, request_adapter, sub_response, context, root_value,
            dataclasses.replace(request_data, query=resolved.query),
        )  # fmt: skip
        if resolved.query is not None and _ran(result):
            await persisted.remember(resolved, resolved.query)
        return result


def _ran(result: ExecutionResult) -> bool:
    """The document passed parsing, validation and the limits (so it may be kept): it has
    data, or its errors belong to fields."""
    return result.data is not None or any(error.path for error in result.errors or [])
