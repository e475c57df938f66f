"""Rendering for Telegram: a Reply as escaped HTML pieces and inline keyboards."""

from __future__ import annotations

import functools
import html
import logging
from dataclasses import dataclass

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from telegram.constants import MessageLimit

from bots import feedback
from bots.common import split_message, ui_text
from bots.feedback import FeedbackClick, FeedbackTicket
from core import Reply, Suggestion

logger = logging.getLogger(__name__)

MAX_TEXT = int(MessageLimit.MAX_TEXT_LENGTH)
# Telegram caps an inline keyboard at about 100 buttons; a long topic list stays well below.
MAX_BUTTONS = 50

@dataclass(frozen=True)
class Rendered:
    """A reply as Telegram messages: escaped HTML pieces, the keyboard goes on the last one."""

    pieces: list[str]
    keyboard: InlineKeyboardMarkup | None = None


def html_pieces(text: str) -> list[str]:
    """Escape `text` for parse_mode=HTML and cut it into pieces Telegram accepts."""
    limit = MAX_TEXT
    while True:
        # Escaping lengthens the text, so cut the raw text shorter until every piece fits.
        pieces = [html.escape(piece, quote=False) for piece in split_message(text, limit)]
        if all(_telegram_length(piece) <= MAX_TEXT for piece in pieces):
            return pieces
        limit //= 2


def _telegram_length(text: str) -> int:
    # Telegram counts UTF-16 code units: an emoji outside the BMP counts twice.
    return len(text.encode("utf-16-le")) // 2


def answer_button_data(intent: str, lang: str) -> str:
    """The callback_data of a button that answers one intent (at most 64 bytes)."""
    return f"a:{intent}:{lang}"


def none_button_data(lang: str) -> str:
    """The callback_data of the "none of these" button of a clarification."""
    return f"n:{lang}"


def render_reply(reply: Reply, ticket: FeedbackTicket | None = None) -> Rendered:
    """The answer text, a title for its suggestions, the suggestions as buttons, and under a
    curated answer with a `ticket`, the feedback buttons."""
    text = reply.answer
    if reply.kind == "answer" and reply.suggestions:
        # Fallback, help and clarify texts introduce their own list; related answers need a title.
        text = f"{text}\n\n{ui_text('related', reply.lang)}"
    keyboard = _keyboard(_choices(reply.suggestions), reply.lang,
                         none_of_these=reply.kind == "clarify")
    if ticket is not None and reply.kind == "answer":
        keyboard = _with_feedback_row(keyboard, ticket)
    return Rendered(html_pieces(text), keyboard)


def _with_feedback_row(keyboard: InlineKeyboardMarkup | None,
                       ticket: FeedbackTicket) -> InlineKeyboardMarkup:
    """The keyboard with "helpful" and "not helpful" side by side on a last row."""
    helpful, not_helpful = feedback.verdict_clicks(ticket)
    row = (InlineKeyboardButton(ui_text("helpful", ticket.lang), callback_data=helpful.data()),
           InlineKeyboardButton(ui_text("not_helpful", ticket.lang),
                                callback_data=not_helpful.data()))
    rows = keyboard.inline_keyboard if keyboard else ()
    return InlineKeyboardMarkup([*rows, row])


def keyboard_after_feedback(keyboard: InlineKeyboardMarkup | None,
                            instead: list[InlineKeyboardButton]) -> InlineKeyboardMarkup | None:
    """A message's keyboard without its feedback buttons, then `instead` one a row."""
    rows = [[button for button in row if not _is_feedback(button)]
            for row in (keyboard.inline_keyboard if keyboard else ())]
    rows = [row for row in rows if row] + [[button] for button in instead]
    return InlineKeyboardMarkup(rows) if rows else None


def _is_feedback(button: InlineKeyboardButton) -> bool:
    data = button.callback_data
    return isinstance(data, str) and feedback.parse(data) is not None


def choice_buttons(click: FeedbackClick, topics: list[Suggestion],
                   asker: str) -> list[InlineKeyboardButton]:
    """The buttons offered after "not helpful" (feedback.choices_instead)."""
    return [InlineKeyboardButton(label, callback_data=choice.data())
            for label, choice in feedback.choices_instead(click, topics, asker)]


def render_topics(intro: str, topics: list[Suggestion], lang: str) -> Rendered:
    """An introduction followed by one button per topic."""
    return Rendered(html_pieces(intro), _keyboard(_choices(topics), lang, none_of_these=False))


def render_text(text: str) -> Rendered:
    """Plain text, escaped, no buttons."""
    return Rendered(html_pieces(text))


def _choices(suggestions: list[Suggestion]) -> tuple[tuple[str, str], ...]:
    """(intent, question) of the suggestions shown as buttons."""
    return tuple((suggestion.intent, suggestion.question)
                 for suggestion in suggestions[:MAX_BUTTONS])


# A bot shows the same few keyboards again and again (every fallback lists all topics), and
# python-telegram-bot's objects are frozen once built, so each keyboard is built once and
# shared: building its buttons was about 2 % of the bot's CPU under load.
@functools.lru_cache(maxsize=1024)
def _keyboard(choices: tuple[tuple[str, str], ...], lang: str,
              none_of_these: bool) -> InlineKeyboardMarkup | None:
    buttons = [InlineKeyboardButton(question, callback_data=answer_button_data(intent, lang))
               for intent, question in choices]
    if none_of_these:
        buttons.append(InlineKeyboardButton(ui_text("none_of_these", lang),
                                            callback_data=none_button_data(lang)))
    # One button a row: the labels are whole questions.
    return InlineKeyboardMarkup([[button] for button in buttons]) if buttons else None
