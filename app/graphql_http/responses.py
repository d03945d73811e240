"""Status codes, media type and cache headers of a GraphQL response (decision 0041).

Under application/graphql-response+json a request error (nothing executed: the document
did not parse, validate, fit the limits, or its variables did not coerce) answers 4xx
without `data`; once execution started the answer is 200, whatever its field errors.
application/json keeps the legacy behaviour: 200 and `"data": null` for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from app.graphql_http.negotiation import GRAPHQL_RESPONSE_JSON

# What a response depends on besides the URL: caches must key on these.
VARY = "Accept, Authorization, X-Consistency-Token"
_STATE = "graphql_http"


@dataclass(frozen=True)
class Outcome:
    """What one operation's result says about the request."""

    request_error: bool
    codes: frozenset[str]
    clean: bool  # data and no error at all

    @classmethod
    def of(cls, result: ExecutionResult) -> Outcome:
        errors = result.errors or []
        codes = frozenset(str((e.extensions or {}).get("code")) for e in errors)
        # Field errors carry a path (GraphQL spec, 7.1.2); errors raised before execution
        # began (parse, validation, limits, variable coercion) have none and no data.
        request_error = result.data is None and bool(errors) and all(e.path is None for e in errors)
        return cls(request_error, codes, result.data is not None and not errors)

    def status(self) -> int:
        if "INTERNAL_SERVER_ERROR" in self.codes:
            return 500
        if self.codes == {"UNAUTHENTICATED"}:
            return 401
        return 400


@dataclass
class Exchange:
    """One HTTP request to the GraphQL endpoint, as GraphQL over HTTP sees it."""

    media_type: str | None  # None: not ours to negotiate (GraphiQL's page, streams)
    method: str
    # A GET without credentials or a consistency token: its answer is the same for everyone.
    anonymous_get: bool
    max_age_seconds: int
    batch: bool = False
    outcomes: list[Outcome] = field(default_factory=list)

    def attach(self, request: Request) -> None:
        setattr(request.state, _STATE, self)

    @staticmethod
    def of(request: Request) -> Exchange | None:
        found = getattr(request.state, _STATE, None)
        return found if isinstance(found, Exchange) else None

    def record(self, result: ExecutionResult, response: GraphQLHTTPResponse) -> None:
        if self.media_type is None:
            return
        outcome = Outcome.of(result)
        self.outcomes.append(outcome)
        if outcome.request_error and self.media_type == GRAPHQL_RESPONSE_JSON:
            response.pop("data", None)  # "SHOULD not contain the data entry"

    def finish(self, response: Response) -> Response:
        """Strawberry's JSON response with our media type, status and cache headers."""
        if self.media_type is None or not self.outcomes:
            return response
        response.headers["content-type"] = f"{self.media_type}; charset=utf-8"
        response.headers.add_vary_header(VARY)
        single = None if self.batch else self.outcomes[0]
        if single is not None and single.request_error and self.media_type == GRAPHQL_RESPONSE_JSON:
            response.status_code = single.status()
            if response.status_code == 401:
                response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        cacheable = self.method == "GET" and self.anonymous_get and single is not None
        if cacheable and single is not None and single.clean:
            response.headers["Cache-Control"] = f"public, max-age={self.max_age_seconds}"
        else:
            response.headers["Cache-Control"] = "no-store"
        return response
