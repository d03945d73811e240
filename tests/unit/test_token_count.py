"""The regex token count agrees with graphql-core's lexer, so refusing early refuses only
what the parser would refuse."""

from __future__ import annotations

from graphql import get_introspection_query
from graphql.language import Lexer, Source, TokenKind
from hypothesis import given
from hypothesis import strategies as st

from schema.limits.tokens import over_token_limit, token_count
from tests import support


def lexer_count(text: str) -> int:
    lexer, count = Lexer(Source(text)), 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


TOKENS = st.one_of(
    st.sampled_from(["!", "$", "&", "(", ")", "...", ":", "=", "@", "[", "]", "{", "|", "}"]),
    st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,8}", fullmatch=True),
    st.from_regex(r"-?(0|[1-9][0-9]{0,5})(\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?", fullmatch=True),
    st.text(st.characters(codec="utf-8", min_codepoint=0x20, exclude_characters='"\\')).map(
        lambda body: f'"{body}"'
    ),
    st.text(
        st.characters(codec="utf-8", min_codepoint=0x20, exclude_characters='"\\'), max_size=20
    ).map(lambda body: f'"""{body}"""'),
)
SEPARATORS = st.sampled_from([" ", ",", "\n", "\t", ' # a comment with "quotes" and # signs\n'])


@given(st.lists(st.tuples(TOKENS, SEPARATORS), max_size=40))
def test_the_count_matches_the_lexer_on_any_token_sequence(parts: list[tuple[str, str]]) -> None:
    text = "".join(token + separator for token, separator in parts)
    assert token_count(text) == lexer_count(text)


def test_the_count_matches_the_lexer_on_real_documents() -> None:
    documents = [get_introspection_query(descriptions=True)]
    documents += [value for value in vars(support).values() if _is_document(value)]
    documents.append('{ a(s: "# not a comment", b: """ "quoted" \\""" """) # tail "x"\n }')
    assert len(documents) > 5
    for document in documents:
        assert token_count(document) == lexer_count(document), document


def test_a_document_is_over_the_limit_only_past_the_last_token_allowed() -> None:
    at_limit = "{ " + "a " * 98 + "}"  # 100 tokens
    assert token_count(at_limit) == 100
    assert not over_token_limit(at_limit, 100)
    assert over_token_limit(at_limit, 99)
    assert over_token_limit("{a}", 2)
    assert not over_token_limit("{a}", 3), "no more tokens than characters"


def _is_document(value: object) -> bool:
    return isinstance(value, str) and value.lstrip().startswith(
        ("query", "mutation", "subscription", "{")
    )
