"""The bounds of a catalog search (reads/products.py check_search): no services needed."""

from __future__ import annotations

import pytest

from reads.products import BadSearch, SearchLimits, check_search

LIMITS = SearchLimits(max_characters=40, max_words=4)


@pytest.mark.parametrize(
    "search", [None, "", "mug", "blue mug tea pot", "x" * 40, "  a  b  c  d  ", '"blue mug" -tea']
)
def test_a_search_within_the_limits_passes(search: str | None) -> None:
    check_search(search, LIMITS)


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ("a b c d e", "at most 4 words, got 5"),
        ("x" * 41, "at most 40 characters long, got 41"),
        (" " * 41, "at most 40 characters"),
        (" ".join(["w"] * 11_000), "at most 40 characters"),
        ("mug\x00", "NUL"),
    ],
)
def test_a_search_beyond_the_limits_is_refused_naming_the_argument(
    search: str, message: str
) -> None:
    with pytest.raises(BadSearch, match=message) as refused:
        check_search(search, LIMITS)
    assert str(refused.value).startswith("search must")
    assert isinstance(refused.value, ValueError)
