"""`shop projections verify`: every projected document against the write store's.

The write-store fallback (reads.fallback) builds each document from the normalized
tables; a projection is right when its collections hold exactly those documents, in
both directions, `position` aside. The comparison is a pure function
(`compare_documents`); `verify_projection` only loads both sides.

The answer is exact when the projection has caught up with the event log and no
command commits meanwhile: a projection that is behind shows its lag as differences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncSession

from reads.documents import POSITION, Document
from reads.fallback import projection_documents
from reads.projection_state import STATE

# Documents that differ in more fields than this are reported with the first ones only.
MAX_FIELDS_PER_DOCUMENT = 20


async def verify_projection(
    mongo_db: AsyncDatabase[Any],
    collections: Mapping[str, str],
    session: AsyncSession,
    projection_name: str,
) -> list[str]:
    """Differences between a projection's documents and the write store's; [] when equal.

    `collections` maps the projection's logical collection names to physical ones.
    """
    expected = await projection_documents(session, projection_name)
    projected: dict[str, list[Document]] = {}
    for logical in expected:
        if logical not in collections:
            raise ValueError(
                f"no physical collection given for {logical!r} of projection {projection_name!r}"
            )
        projected[logical] = await mongo_db[collections[logical]].find({}).to_list()
    return compare_documents(projected, expected)


async def record_verification(
    mongo_db: AsyncDatabase[Any], projection_name: str, differences: int
) -> None:
    """Keep a verification's outcome beside the checkpoint: the API's /metrics exports it,
    and the verify-differences alert watches it until the next verify says 0."""
    await mongo_db[STATE].update_one(
        {"_id": projection_name},
        {"$set": {"verified": {"differences": differences, "at": datetime.now(UTC)}}},
    )


def compare_documents(
    projected: Mapping[str, Sequence[Document]], expected: Mapping[str, Sequence[Document]]
) -> list[str]:
    """Human-readable differences, by logical collection and `_id`, ignoring `position`.

    A document only one side has is reported as missing (from the projection) or extra
    (in the projection only); a document both have is compared field by field, nested
    documents and lists included, and each differing field is named with both values.
    """
    differences: list[str] = []
    for collection in sorted(set(projected) | set(expected)):
        ours = _by_id(projected.get(collection, ()))
        theirs = _by_id(expected.get(collection, ()))
        for doc_id in sorted(set(ours) | set(theirs)):
            where = f"{collection}/{doc_id}"
            if doc_id not in ours:
                differences.append(
                    f"{where}: missing from the projection (write store: {_show(theirs[doc_id])})"
                )
            elif doc_id not in theirs:
                differences.append(
                    f"{where}: extra in the projection, absent from the write store "
                    f"(projection: {_show(ours[doc_id])})"
                )
            else:
                fields = list(_field_differences(ours[doc_id], theirs[doc_id]))
                differences.extend(f"{where}: {line}" for line in fields[:MAX_FIELDS_PER_DOCUMENT])
                if len(fields) > MAX_FIELDS_PER_DOCUMENT:
                    hidden = len(fields) - MAX_FIELDS_PER_DOCUMENT
                    differences.append(f"{where}: ... and {hidden} more differing fields")
    return differences


def _by_id(documents: Iterable[Document]) -> dict[str, Document]:
    return {
        str(document["_id"]): {k: v for k, v in document.items() if k != POSITION}
        for document in documents
    }


def _field_differences(ours: Any, theirs: Any, path: str = "") -> Iterable[str]:
    if isinstance(ours, Mapping) and isinstance(theirs, Mapping):
        for key in sorted(set(ours) | set(theirs), key=str):
            field = f"{path}.{key}" if path else str(key)
            if key not in ours:
                yield f"{field}: absent in the projection, write store {_show(theirs[key])}"
            elif key not in theirs:
                yield f"{field}: projection {_show(ours[key])}, absent in the write store"
            else:
                yield from _field_differences(ours[key], theirs[key], field)
    elif _is_list(ours) and _is_list(theirs):
        if len(ours) != len(theirs):
            yield (
                f"{path or '(document)'}: projection has {len(ours)} items, "
                f"write store {len(theirs)}"
            )
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=False)):
            yield from _field_differences(mine, other, f"{path}[{index}]")
    elif not _same(ours, theirs):
        yield f"{path or '(document)'}: projection {_show(ours)} != write store {_show(theirs)}"


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _same(ours: Any, theirs: Any) -> bool:
    """Equal values of the same kind: True is not 1, and datetimes compare as instants."""
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return type(ours) is type(theirs) and ours == theirs
    if isinstance(ours, datetime) and isinstance(theirs, datetime):
        if (ours.tzinfo is None) != (theirs.tzinfo is None):
            return False
        return ours == theirs
    if isinstance(ours, int) and isinstance(theirs, int):
        return int(ours) == int(theirs)  # bson's Int64 is an int
    if type(ours) is not type(theirs):
        return False
    return bool(ours == theirs)


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if _is_list(value):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)
