"""Counts a document's tokens with one regular expression, before the parser runs.

graphql-core's parser stops at MAX_QUERY_TOKENS, but only after lexing that many tokens
in Python: about 10 ms for 2,000 of them, seven plain queries' worth, every time a
refused document is sent again (a failed parse is not cached). The expression below
lexes the same tokens in C. It may count fewer than the parser on a malformed document,
never more on a well-formed one, so the parser's own limit stays the exact one.
"""

from __future__ import annotations

import re

# Alternatives in the lexer's order of precedence at each position: block strings before
# strings, comments skipped (graphql-core does not count them), then `...`, punctuators,
# numbers and names. Anything else is left for the parser to refuse.
_TOKEN = re.compile(
    r'"""(?:\\"""|[^"]|"(?!""))*"""'
    r'|"(?:\\.|[^"\\\n\r])*"'
    r"|(#)[^\n\r]*"
    r"|\.\.\."
    r"|[!$&():=@\[\]{|}]"
    r"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
    r"|[_A-Za-z][_0-9A-Za-z]*"
)


def token_count(text: str) -> int:
    """The tokens graphql-core's lexer would count in `text` (comments excluded)."""
    # One group: findall gives "#" for a comment and "" for any other token.
    found: list[str] = _TOKEN.findall(text)
    return len(found) - found.count("#")


def over_token_limit(text: str, maximum: int) -> bool:
    """Whether `text` holds more than `maximum` tokens; free for texts too short to."""
    # Every token takes at least one character.
    return len(text) > maximum and token_count(text) > maximum
