"""Persisted documents for operations that do not come through the HTTP view: websocket
messages and event streams. `persisted_only` holds on every transport."""

from __future__ import annotations

from typing import Any

from app.persisted.resolver import PersistedQueries, PersistedQueryRefused
from schema.context import Context


async def resolve_operation(
    context: Context, payload: Any
) -> tuple[Any, PersistedQueryRefused | None]:
    """The operation's payload with its document resolved, or the refusal. A payload of
    the wrong shape is passed on as it is: the protocol's own checks refuse it."""
    if not isinstance(payload, dict):
        return payload, None
    query, extensions = payload.get("query"), payload.get("extensions")
    document_id = payload.get("documentId")
    if not (
        (query is None or isinstance(query, str))
        and (extensions is None or isinstance(extensions, dict))
        and (document_id is None or isinstance(document_id, str))
    ):
        return payload, None
    persisted: PersistedQueries = context.request.app.state.dependencies.persisted
    try:
        resolved = await persisted.resolve(query, extensions, document_id)
    except PersistedQueryRefused as refused:
        return payload, refused
    return {**payload, "query": resolved.query}, None
