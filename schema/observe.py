"""What each GraphQL operation did, handed to an observer (the app's metrics).

ErrorCodes' own operation-level hooks, extended: nothing runs per field, so the
plain-data shortcut (schema/execution.py) stays on, and no hook is added per request.
The schema layer knows nothing of Prometheus; the app passes an observer that turns
reports into metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import GraphQLError
from strawberry.types.graphql import OperationType

from schema.consistency import ServedFrom
from schema.extensions import ErrorCodes

# An operation that did not parse or validate has no trustworthy name.
INVALID = "(invalid)"
ANONYMOUS = "(anonymous)"
_REFUSED = frozenset({"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"})
_SUBSCRIPTION = OperationType.SUBSCRIPTION.value


@dataclass(frozen=True, slots=True)
class OperationReport:
    """One finished operation: its name and kind, how long it took, what went wrong,
    and where its reads were served from when the client asked for read-your-writes."""

    name: str
    kind: str  # "query" | "mutation" | "subscription" | "unknown"
    seconds: float
    error_codes: tuple[str, ...]
    # "projection" | "waited" | "write_store"; None when no consistency token was sent.
    consistency: str | None
    # Answered by a compiled plan (schema/compiled/) rather than strawberry.
    compiled: bool = False


class OperationObserver(Protocol):
    def operation_finished(self, report: OperationReport) -> None: ...

    def subscription_opened(self) -> None: ...

    def subscription_closed(self) -> None: ...


class Observed(ErrorCodes):
    """ErrorCodes that also reports every operation to `observer`.

    A subclass, not a second extension: strawberry wraps every hook of every extension
    in a context manager per request, and a separate extension cost a trivial query
    about a fifth of its time. Its hooks wrap ErrorCodes' own, so it sees coded errors.
    """

    def __init__(self, *, observer: OperationObserver) -> None:
        super().__init__()
        self._observer = observer
        self._kind: str | None = None  # known once execution starts (parsed and valid)

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        raised: tuple[str, ...] = ()
        try:
            yield from super().on_operation()
        except GraphQLError as exc:  # a parse failure, coded by ErrorCodes on its way out
            raised = (_code(exc),)
            raise
        except Exception:  # no query, or an operation the HTTP method does not allow
            raised = ("BAD_REQUEST",)
            raise
        finally:
            if self._kind == _SUBSCRIPTION:
                self._observer.subscription_closed()
            self._observer.operation_finished(self._report(time.perf_counter() - started, raised))

    def on_execute(self) -> Iterator[None]:
        # A subscription's operation hook spans its whole stream; execution starts it.
        self._kind = _kind(self.execution_context)
        if self._kind == _SUBSCRIPTION:
            self._observer.subscription_opened()
        yield from super().on_execute()

    def _report(self, seconds: float, raised: tuple[str, ...]) -> OperationReport:
        context = self.execution_context
        result = context.result
        if raised:
            codes = raised
        elif result is not None and result.errors:
            codes = tuple(_code(error) for error in result.errors)
        else:
            codes = ()
        valid = self._kind is not None and not raised and _REFUSED.isdisjoint(codes)
        return OperationReport(
            name=(context.operation_name or ANONYMOUS) if valid else INVALID,
            kind=self._kind if valid and self._kind else "unknown",
            seconds=seconds,
            error_codes=codes,
            consistency=_served_from(context.context),
        )


def _kind(context: Any) -> str:
    try:
        return str(context.operation_type.value)
    except Exception:  # no document, or an operation name the document lacks
        return "unknown"


def _code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    return code if isinstance(code, str) else "INTERNAL_SERVER_ERROR"


def _served_from(context: Any) -> str | None:
    """How a read with a consistency token was answered (ServedFrom.least_fresh)."""
    served_from = getattr(context, "served_from", None)
    return served_from.least_fresh() if isinstance(served_from, ServedFrom) else None
