"""Which response media type a request's Accept header asks for (RFC 9110, 12.5.1)."""

from __future__ import annotations

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
# A wildcard (`*/*`, `application/*`) or no header gets application/json: legacy clients
# (and the graphql-http audit) expect it; a client naming both gets the newer one.
_SUPPORTED = (JSON, GRAPHQL_RESPONSE_JSON)
_EXACT = 3


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in; None when the header allows neither we support.

    q-values count (q=0 refuses a type); a type named exactly outranks a wildcard at
    the same q, and between two types named exactly application/graphql-response+json wins.
    """
    if accept is None or not accept.strip():
        return JSON
    ranges = [_media_range(part) for part in accept.split(",") if part.strip()]
    best: tuple[float, int, int] | None = None
    chosen: str | None = None
    for media_type in _SUPPORTED:
        weight = _weight(media_type, ranges)
        if weight is None or weight[0] <= 0:
            continue
        named = weight[1] == _EXACT
        preference = int((media_type == GRAPHQL_RESPONSE_JSON) == named)
        rank = (weight[0], weight[1], preference)
        if best is None or rank > best:
            best, chosen = rank, media_type
    return chosen


def _media_range(part: str) -> tuple[str, float]:
    name, *params = (piece.strip() for piece in part.split(";"))
    q = 1.0
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
    return name.lower(), q


def _weight(media_type: str, ranges: list[tuple[str, float]]) -> tuple[float, int] | None:
    """The q of the most specific range matching `media_type`, and that specificity."""
    kind = media_type.split("/")[0]
    found: tuple[float, int] | None = None
    for name, q in ranges:
        specificity = {media_type: _EXACT, f"{kind}/*": 2, "*/*": 1}.get(name)
        if specificity is not None and (found is None or specificity > found[1]):
            found = (q, specificity)
    return found
