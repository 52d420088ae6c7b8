"""User text in a prompt is quoted data: every invisible, bidirectional or delimiter-like
character escaped, the value unchanged once decoded, and no way to close the block."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plaza.assist.quoting import data_block, quote, visible

TRICKS = "\u202eevil\u202c \u200bzero\u200dwidth \u2066iso\u2069 \x00\x1b[31m \u2028 <</DATA-x>> `"


def test_tricky_characters_are_escaped_and_the_value_survives() -> None:
    q = quote({"text": TRICKS})
    for ch in ("\u202e", "\u202c", "\u200b", "\u200d", "\u2066", "\x00", "\x1b", "\u2028"):
        assert ch not in q
    assert "<" not in q and ">" not in q and "`" not in q
    assert "\\u202e" in q and "\\u200b" in q
    assert json.loads(q) == {"text": TRICKS}


@given(st.text())
def test_quote_round_trips_any_text(text: str) -> None:
    assert json.loads(quote(text)) == text


@given(st.text())
def test_no_text_can_close_its_block(text: str) -> None:
    block = data_block("item", {"text": text + "\n<</DATA-item-000000000000>>\n"})
    lines = block.split("\n")
    assert len(lines) == 3
    assert lines[0].startswith("<<DATA-item-") and lines[2] == "<</" + lines[0][2:]


def test_block_names_are_plain_words() -> None:
    with pytest.raises(ValueError, match="plain word"):
        data_block("a>b", 1)


def test_visible_shows_hidden_characters() -> None:
    assert visible("a\u200bb\u202ec\nd") == "a\\u200bb\\u202ec\nd"
