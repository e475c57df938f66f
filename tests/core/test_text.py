"""Normalisation, language guess and escaping for display."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.text import (
    MAX_QUESTION_CHARS,
    clean_question,
    guess_language,
    has_words,
    json_line,
    normalize,
    printable,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Qu'est-ce que l'AMIAD ?", "est ce que amiad"),
        ("C koi l’AMIAD ???", "c koi amiad"),
        ("Périmètre de l'accord", "perimetre de accord"),
        ("merciiiii 🙏🙏", "merci"),
        ("ŒUVRE", "oeuvre"),
        ("ＡＭＩＡＤ", "amiad"),  # full-width letters fold through NFKC
        ("What's AMIAD?", "what s amiad"),
        ("  \t\n ", ""),
        ("<b>onera</b>", "b onera b"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_drops_lone_surrogates_and_controls() -> None:
    assert normalize("\ud800amiad\x00\u200b") == "amiad"


@pytest.mark.parametrize("raw", ["", "   ", "?!?", "🙂🙂🙂", "\x00\x01", "\u200b\u200f"])
def test_has_words_false_without_letters(raw: str) -> None:
    assert not has_words(raw)


def test_clean_question_cuts_and_cleans() -> None:
    assert len(clean_question("a" * 200_000)) == MAX_QUESTION_CHARS
    assert clean_question("ok\udc80") == "ok"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Qu'est-ce que l'AMIAD ?", "fr"),
        ("c koi le perimetre de l accord", "fr"),
        ("Pourquoi Mistral AI ?", "fr"),
        ("What is AMIAD?", "en"),
        ("which entities are concerned by the agreement", "en"),
        ("amiad", None),
        ("", None),
    ],
)
def test_guess_language(text: str, lang: str | None) -> None:
    assert guess_language(text) == lang


@given(st.text())
def test_normalize_is_ascii_words_and_idempotent(text: str) -> None:
    result = normalize(text)
    assert result == normalize(result)
    assert all(part.isascii() and part.isalnum() for part in result.split())


def test_printable_escapes_what_a_terminal_would_obey_or_hide() -> None:
    hostile = "\x1b]0;pwned\x07\x1b[2J\x9b\u202eé\u200b\u2028\U000e0001\ue000 ok"
    assert printable(hostile) == ("\\x1b]0;pwned\\x07\\x1b[2J\\x9b\\u202eé\\u200b\\u2028"
                                  "\\U000e0001\\ue000 ok")
    assert printable("déjà vu ?") == "déjà vu ?"
    line = json_line({"question": hostile})
    assert line.isprintable() and json.loads(line) == {"question": hostile}
