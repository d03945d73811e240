"""writes/rules.py on control characters: refused in every text field, naming the field,
before anything is hashed or stored; multi-line text keeps tab and line breaks."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from writes import rules
from writes.errors import NotFound, ValidationFailed

hermetic = hypothesis_settings(database=None, deadline=None)

# Every Cc character: C0, DEL and C1.
CONTROLS = [chr(code) for code in [*range(0x20), *range(0x7F, 0xA0)]]
LINE_BREAKS_AND_TAB = ["\t", "\n", "\r"]


@hermetic
@given(st.text())
def test_plain_text_is_accepted_exactly_when_it_holds_no_control_character(value: str) -> None:
    has_control = any(unicodedata.category(char) == "Cc" for char in value)
    if has_control:
        with pytest.raises(ValidationFailed):
            rules.plain_text(value, "name")
    else:
        assert rules.plain_text(value, "name") == value


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_control_character_is_refused_naming_the_field_and_the_character(char: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        rules.plain_text(f"ab{char}cd", "idempotency_key")

    assert refused.value.field == "idempotency_key"
    assert f"U+{ord(char):04X}" in refused.value.message


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_multi_line_text_keeps_only_tab_and_line_breaks(char: str) -> None:
    value = f"line one{char}line two"
    if char in LINE_BREAKS_AND_TAB:
        assert rules.description(value) == value
    else:
        with pytest.raises(ValidationFailed) as refused:
            rules.description(value)
        assert refused.value.field == "description"


FIELD_RULES: list[tuple[str, Callable[[str], object], str]] = [
    ("email", rules.email, "ada@example.com"),
    ("email", rules.login_email, "ada@example.com"),
    ("name", rules.name, "Ada Lovelace"),
    ("password", rules.password, "correct-horse-battery"),
    ("sku", rules.sku, "TEA-01"),
    ("description", rules.description, "Loose leaf"),
    ("idempotency_key", rules.idempotency_key, "key-123"),
]


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85"], ids=repr)
@pytest.mark.parametrize(
    ("field", "rule", "valid"), FIELD_RULES, ids=lambda v: getattr(v, "__name__", "")
)
def test_every_text_rule_refuses_control_characters(
    field: str, rule: Callable[[str], object], valid: str, char: str
) -> None:  # fmt: skip
    rule(valid)
    with pytest.raises(ValidationFailed) as refused:
        rule(valid[:3] + char + valid[3:])
    assert refused.value.field == field


@pytest.mark.parametrize("char", ["\t", "\n", "\x0b", "\x00"], ids=repr)
def test_an_id_with_a_control_character_names_nothing(char: str) -> None:
    # UUID() lets int() skip the whitespace: this would otherwise name 0111...-1111.
    with pytest.raises(NotFound):
        rules.entity_id(char + "1" * 31, "product")


def test_login_email_normalizes_what_signup_stores_and_keeps_other_text_as_given() -> None:
    assert rules.login_email(" Ada@Example.COM ") == "ada@example.com"
    assert rules.login_email("Not An Address") == "not an address"
