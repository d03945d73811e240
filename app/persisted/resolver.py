"""Which document a request runs: its own text, an automatic persisted query (Apollo's
protocol exactly), or a trusted document by id; and which of them a mode refuses.

Modes (PERSISTED_QUERIES):
- `off`: free-form documents only; a persistedQuery extension is PERSISTED_QUERY_NOT_SUPPORTED,
  which tells Apollo's link to stop sending hashes;
- `apq` (default): free-form documents, APQ, and trusted documents if a manifest is set;
- `persisted_only`: only the manifest's documents run (by id, hash, or text + hash); any
  other document is PERSISTED_QUERY_REQUIRED, and nothing is registered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from app.persisted.manifest import TrustedDocuments, sha256_hex
from app.persisted.store import ApqStore

Mode = Literal["off", "apq", "persisted_only"]
APQ_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PersistedQueryRefused(Exception):
    """Answered as a GraphQL error with this code (what Apollo's link reads)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


NOT_FOUND = PersistedQueryRefused("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
NOT_SUPPORTED = PersistedQueryRefused("PERSISTED_QUERY_NOT_SUPPORTED", "PersistedQueryNotSupported")
REQUIRED = PersistedQueryRefused(
    "PERSISTED_QUERY_REQUIRED",
    "This server runs persisted documents only: send a known documentId or "
    "extensions.persistedQuery.sha256Hash",
)


@dataclass(frozen=True)
class Resolved:
    query: str | None
    # The hash to register this document under once it ran (APQ's second request).
    register: str | None = None


@dataclass(frozen=True)
class PersistedQueries:
    mode: Mode
    store: ApqStore | None
    trusted: TrustedDocuments

    async def resolve(
        self, query: str | None, extensions: dict[str, Any] | None, document_id: str | None
    ) -> Resolved:
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is not None:
            return await self._by_hash(query, _sha256(persisted))
        if document_id is not None:
            found = self.trusted.find(document_id)
            if found is None:
                raise NOT_FOUND
            if query is not None and query != found:
                raise PersistedQueryRefused(
                    "BAD_REQUEST", "`query` differs from the document `documentId` names"
                )
            return Resolved(found)
        if self.mode == "persisted_only" and query is not None:
            raise REQUIRED
        return Resolved(query)

    async def remember(self, resolved: Resolved, query: str) -> None:
        if resolved.register is not None and self.store is not None:
            await self.store.put(resolved.register, query)

    async def _by_hash(self, query: str | None, sha256: str) -> Resolved:
        if self.mode == "off":
            raise NOT_SUPPORTED
        trusted = self.trusted.by_hash.get(sha256)
        if query is None:
            if trusted is not None:
                return Resolved(trusted)
            found = await self.store.get(sha256) if self.store and self.mode == "apq" else None
            if found is None:
                raise NOT_FOUND
            return Resolved(found)
        if sha256_hex(query) != sha256:
            raise PersistedQueryRefused(
                "PERSISTED_QUERY_HASH_MISMATCH",
                "extensions.persistedQuery.sha256Hash is not the sha256 of `query`",
            )
        if trusted is not None:
            return Resolved(query)
        if not self._registers:
            raise REQUIRED
        return Resolved(query, register=sha256)

    @property
    def _registers(self) -> bool:
        return self.mode == "apq" and self.store is not None


def _sha256(persisted: object) -> str:
    if not isinstance(persisted, dict):
        raise PersistedQueryRefused("BAD_REQUEST", "extensions.persistedQuery must be an object")
    if persisted.get("version") != APQ_VERSION:
        raise PersistedQueryRefused(
            "PERSISTED_QUERY_NOT_SUPPORTED",
            f"persisted query version {persisted.get('version')!r}: only {APQ_VERSION} is known",
        )
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise PersistedQueryRefused(
            "BAD_REQUEST", "extensions.persistedQuery.sha256Hash must be 64 lowercase hex digits"
        )
    return sha256
