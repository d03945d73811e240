"""Strawberry's ASGI view held to GraphQL over HTTP; ShopGraphQL builds on it.

Each hook does one job: `serve_http` negotiates and turns every refusal into a coded JSON
body, `parse_http_body` checks the parameters, `execute_operation` runs batches in order
against one budget, `process_result` notes each result's outcome for the status code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, GraphQLRequestProtocol
from strawberry.http.parse_content_type import parse_content_type
from strawberry.types import ExecutionResult, SubscriptionExecutionResult

from app.graphql_http.compiled import serve_compiled
from app.graphql_http.negotiation import negotiate
from app.graphql_http.refusals import (
    method_not_allowed,
    not_acceptable,
    refusal,
    refusal_response,
)
from app.graphql_http.requests import (
    BatchPolicy,
    check_content_type,
    operation_from_query_string,
    operations_from_body,
)
from app.graphql_http.responses import VARY, Exchange
from schema.compiled.operations import CompiledOperations
from schema.context import Context
from schema.limits import SharedBudget


@dataclass(frozen=True)
class HttpRules:
    """The settings GraphQL over HTTP reads (app/settings.py)."""

    batches: BatchPolicy = field(default_factory=BatchPolicy)
    # Cache-Control max-age of a successful GET query sent without credentials or token.
    get_max_age_seconds: int = 0


class GraphQLOverHTTP(GraphQL[Context, None]):
    http_rules: HttpRules = HttpRules()
    # Operations prepared once per process (schema/compiled/); None: every request runs
    # through strawberry.
    compiled: CompiledOperations | None = None

    async def serve_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        media_type = negotiate(request.headers.get("accept"))
        try:
            exchange = self._admit(request, media_type)
            compiled = None
            if self.compiled is not None:
                compiled = await serve_compiled(
                    self.compiled, request, exchange, self.http_rules.batches, self.get_context
                )
            response = compiled or exchange.finish(await self.run(request))
        except HTTPException as exc:
            response = refusal_response(refusal(exc), media_type)
            response.headers.add_vary_header(VARY)
        await response(scope, receive, send)

    def _admit(self, request: Request, media_type: str | None) -> Exchange:
        """Method, Accept and Content-Type checked before anything reads the body."""
        adapter = self.request_adapter_class(request)
        if not self.is_request_allowed(adapter):
            raise method_not_allowed(request.method)
        ours = not (
            self.should_render_graphql_ide(adapter)
            or self._get_stream_transport_from_headers(request.headers) is not None
        )
        if not ours:
            media_type = None
        elif media_type is None:
            raise not_acceptable()
        if request.method == "POST":
            check_content_type(
                request.headers.get("content-type"), multipart=self.multipart_uploads_enabled
            )
        exchange = Exchange(
            media_type,
            request.method,
            anonymous_get=not (
                request.headers.get("authorization")
                or request.headers.get("x-consistency-token")
                or request.headers.get("cookie")
            ),
            max_age_seconds=self.http_rules.get_max_age_seconds,
        )
        exchange.attach(request)
        return exchange

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        transport = self._get_stream_transport_from_headers(request.headers)
        protocol: GraphQLRequestProtocol = transport.protocol if transport else "http"
        if request.method == "GET":
            return operation_from_query_string(request.query_params, protocol)
        content_type, _ = parse_content_type(request.content_type or "")
        if self.multipart_uploads_enabled and content_type == "multipart/form-data":
            return await super().parse_http_body(request)
        return operations_from_body(await request.get_body(), protocol, self.http_rules.batches)

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        if not isinstance(request_data, list):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        exchange = Exchange.of(request)
        if exchange is not None:
            exchange.batch = True
        # In order, each with a context of its own (strawberry would share one and run them
        # all at once), drawing on one budget: a batch costs what one request may.
        budget = SharedBudget()
        results: list[ExecutionResult] = []
        for data in request_data:
            own = await self.get_context(request, sub_response)
            own.shared_budget = budget
            try:
                results.append(
                    await self.execute_single(
                        request, request_adapter, sub_response, own, root_value, data
                    )
                )
            except HTTPException as exc:  # refused alone: the batch's other operations run
                refused = refusal(exc)
                error = GraphQLError(refused.reason, extensions={"code": refused.code})
                results.append(ExecutionResult(data=None, errors=[error]))
        return results

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        exchange = Exchange.of(request)
        if exchange is not None:
            exchange.record(result, response)
        return response
