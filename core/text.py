"""Text normalisation for French and English questions, a light language guess, and escaping
for display.

Both the classifier and the knowledge-base checks see text only through `normalize`, so
"C koi l’AMIAD ???" and "c'est quoi l'amiad" meet on common ground. What users typed is shown
to curators only through `printable` (or `json_line`), so no control sequence they sent ever
reaches a terminal.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

# Questions are short; anything longer is cut before classification so that a 200,000
# character message costs the same as a paragraph. Documented in the README.
MAX_QUESTION_CHARS = 1000

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'", "′": "'"})
# French elided articles and pronouns ("l'", "qu'", "j'"...): dropped so "l'amiad" is "amiad".
# Applied to case-folded text only, so it needs no IGNORECASE (which makes it twice as slow).
_ELISION = re.compile(r"\b(?:[ldjmnstc]|qu|jusqu|lorsqu|puisqu|quoiqu)'")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_SURROGATES = re.compile("[\ud800-\udfff]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Letters with no decomposition that still have an ASCII spelling; other symbols become spaces.
_LIGATURES = {"œ": "oe", "æ": "ae", "ß": "ss"}
_FRENCH_LETTERS = "éèêàùçôîâœ"

_FRENCH_WORDS = frozenset(
    "le la les un une des du de et est sont que qui quoi quel quelle quels quelles pourquoi "
    "comment ou avec pour par sur dans ce cet cette ces il elle ils on nous vous je tu mon "
    "ton son leur pas ne plus aussi accord armee armees ministere entites concernees "
    "bonjour salut merci revoir oui non c koi pk ya etait sera peut faut"
    .split()
)
_ENGLISH_WORDS = frozenset(
    "the an and is are was were what which who why how where when with for by on in to of "
    "this that these those it they we you i my your its their not no yes also does do did "
    "agreement army armed ministry entities concerned hello hi thanks thank bye goodbye can "
    "could would should about there tell give please show know"
    .split()
)


def _drop_surrogates(text: str) -> str:
    # Lone surrogates come from broken clients; they cannot be encoded, so they go first.
    return text if text.isascii() else _SURROGATES.sub("", text)


def _ascii_spelling(match: re.Match[str]) -> str:
    # A combining mark goes (the accent of a decomposed letter); anything else is no letter of
    # ours but a ligature and becomes a space, as punctuation does.
    char = match.group()
    return "" if unicodedata.combining(char) else _LIGATURES.get(char, " ")


def normalize(text: str) -> str:
    """Lower-case ASCII words separated by single spaces; empty when the text has no words.

    Steps: drop lone surrogates, NFKC, case-fold, unify apostrophes, remove French elision,
    strip accents, turn punctuation, symbols and emoji into spaces, squeeze letters repeated
    three times or more ("merciiii" -> "merci").
    """
    if text.isascii():  # most questions: no Unicode folding to do
        text = _ELISION.sub(" ", text.lower().replace("`", "'"))
    else:
        text = unicodedata.normalize("NFKC", _drop_surrogates(text)).casefold()
        text = _ELISION.sub(" ", text.translate(_APOSTROPHES))
        text = _NON_ASCII.sub(_ascii_spelling, unicodedata.normalize("NFD", text))
    text = _NON_WORD.sub(" ", text)
    return _REPEATS.sub(r"\1", text).strip()


def has_words(text: str) -> bool:
    """True when the text holds at least one letter or digit worth classifying."""
    return bool(normalize(text))


def clean_question(text: str, limit: int = MAX_QUESTION_CHARS) -> str:
    """The question as faqbot keeps it: cut to `limit` characters, lone surrogates removed.

    Cutting comes first so that a 200,000 character message costs what a paragraph costs.
    """
    return _drop_surrogates(text[:limit])


@dataclass(frozen=True, slots=True)
class Question:
    """A text and its `normalize`d form, computed once and passed along with it: the
    classifier reads the words of the one and the sentence encoder the other."""

    text: str
    normalized: str

    @classmethod
    def of(cls, text: str) -> Question:
        """`text` as it is, normalised."""
        return cls(text, normalize(text))

    @classmethod
    def read(cls, message: str) -> Question:
        """A user's message as faqbot keeps it (`clean_question`), normalised."""
        return cls.of(clean_question(message))


def guess_language(text: str) -> str | None:
    """Guess "fr" or "en" from common words and accents; None when there is no clear sign."""
    return question_language(Question.read(text))


def question_language(question: Question) -> str | None:
    """`guess_language` of a question already read."""
    raw = question.text.casefold()
    words = question.normalized.split()
    french = sum(word in _FRENCH_WORDS for word in words)
    english = sum(word in _ENGLISH_WORDS for word in words)
    # Accented letters and elision are strong French signs that stop-word counts miss.
    french += len(_ELISION.findall(raw))
    if not raw.isascii():
        french += sum(raw.count(letter) for letter in _FRENCH_LETTERS)
    if french > english:
        return "fr"
    if english > french:
        return "en"
    return None


def unicode_escape(char: str) -> str:
    """`\\x1b`, `\\u202e` or `\\U000e0001`: a form that Python, YAML double-quoted scalars
    and a reader all understand."""
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, escape: Callable[[str], str] = unicode_escape) -> str:
    """`text` with every character that is not printable escaped: controls (a terminal obeys
    ESC and CSI sequences), line and paragraph separators, bidirectional overrides and
    zero-width marks (they reorder or hide text), unassigned and private-use characters."""
    if text.isprintable():  # nearly always: one pass in C
        return text
    return "".join(char if char.isprintable() else escape(char) for char in text)


def json_line(data: object) -> str:
    """`data` as one line of JSON, with every character that is not printable escaped.

    JSON leaves some raw that split or reorder a line for whoever reads it (U+2028, U+2029,
    NEL, C1 controls, bidirectional and zero-width marks).
    """
    return printable(json.dumps(data, ensure_ascii=False), lambda char: json.dumps(char)[1:-1])
