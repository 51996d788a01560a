"""``word_runs``: the ``\\w+`` runs of a text, by translation for ASCII and by regex otherwise."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsfold.words import word_runs

_WORD = re.compile(r"\w+")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("Hello, world!", ["Hello", "world"]),
        ("snake_case and CVE-2024-1234", ["snake_case", "and", "CVE", "2024", "1234"]),
        ("tab\tnew\nline\x1cfile\x1fsep\x7fdel", ["tab", "new", "line", "file", "sep", "del"]),
        ("don't 3.14", ["don", "t", "3", "14"]),
        ("Größe über", ["Größe", "über"]),  # not ASCII: the regex
        ("東京 2024年", ["東京", "2024年"]),  # unspaced script: one run
        ("مرحبا بالعالم", ["مرحبا", "بالعالم"]),  # no case
        ("a\u00a0b", ["a", "b"]),  # a no-break space separates
    ],
)
def test_word_runs(text: str, expected: list[str]) -> None:
    assert word_runs(text) == expected


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_runs_are_the_regex_runs(text: str) -> None:
    assert word_runs(text) == _WORD.findall(text)


@given(st.text())
def test_any_text_runs_are_the_regex_runs(text: str) -> None:
    assert word_runs(text) == _WORD.findall(text)
