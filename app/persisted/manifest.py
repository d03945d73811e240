"""Trusted documents: the operations a build of the frontend may send, from a manifest.

Three formats are read, each as its tool writes it:
- Apollo's persisted-query manifest: {"format": "apollo-persisted-query-manifest",
  "version": 1, "operations": [{"id", "name", "type", "body"}]}, where `id` is the
  sha256 of `body` (checked);
- Relay's persisted queries and GraphQL Codegen's persisted documents: {"ID": "text"},
  where an ID may be any string (Relay's are often md5) or the sha256 of the text.
Every document is found by its id and by the sha256 of its text, so Apollo's persisted
query link (which sends hashes) works with any of the three.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APOLLO_FORMAT = "apollo-persisted-query-manifest"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ManifestError(ValueError):
    """The manifest cannot be read: the API must not start with half of it."""


@dataclass(frozen=True)
class TrustedDocuments:
    by_id: Mapping[str, str] = field(default_factory=dict)
    by_hash: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.by_hash)

    def find(self, document_id: str) -> str | None:
        """A document by its id, its sha256, or "sha256:HASH" (the persisted documents
        proposal of GraphQL over HTTP)."""
        _, _, hashed = document_id.partition("sha256:")
        return self.by_id.get(document_id) or self.by_hash.get(hashed or document_id)

    @classmethod
    def load(cls, path: Path) -> TrustedDocuments:
        try:
            raw: Any = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ManifestError(f"trusted documents {path}: {exc}") from None
        return cls.parse(raw, str(path))

    @classmethod
    def parse(cls, raw: Any, source: str = "manifest") -> TrustedDocuments:
        if isinstance(raw, dict) and raw.get("format") == APOLLO_FORMAT:
            entries = _apollo_entries(raw, source)
        elif isinstance(raw, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            entries = dict(raw)
        else:
            raise ManifestError(
                f"{source}: neither Apollo's persisted-query manifest nor an id -> text map"
            )
        by_hash = {sha256_hex(text): text for text in entries.values()}
        return cls(by_id=entries, by_hash=by_hash)


def _apollo_entries(raw: dict[str, Any], source: str) -> dict[str, str]:
    if raw.get("version") != 1:
        raise ManifestError(f"{source}: Apollo manifest version {raw.get('version')!r}, not 1")
    entries = {}
    for operation in raw.get("operations", []):
        body, operation_id = operation.get("body"), operation.get("id")
        if not isinstance(body, str) or not isinstance(operation_id, str):
            raise ManifestError(f"{source}: an operation without a string id and body")
        if sha256_hex(body) != operation_id:
            raise ManifestError(f"{source}: operation {operation_id} is not its body's sha256")
        entries[operation_id] = body
    return entries
