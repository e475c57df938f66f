"""Replying on Telegram: a ReplyLayout as escaped HTML pieces and an inline keyboard, sent
with the front door's retry policy, and the notices, toasts and keyboard edits around it.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import logging
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardMarkup,
    InlineQuery,
    Message,
    ReplyParameters,
)
from telegram.constants import MessageLimit, ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from bots.frontdoor.door import FeedbackOutcome
from bots.frontdoor.replies import (
    Choice,
    FeedbackControl,
    ReplyLayout,
    is_feedback,
    split_message,
)
from bots.frontdoor.retry import Retry, RetryPolicy
from bots.frontdoor.texts import ui_text
from bots.telegram.parsing import Target, chat_for_logs
from bots.telegram.transport import call_unparsed

logger = logging.getLogger(__name__)

MAX_TEXT = int(MessageLimit.MAX_TEXT_LENGTH)
# Telegram caps an inline keyboard at about 100 buttons; a long topic list stays well below.
MAX_BUTTONS = 50


# An inline keyboard as the Bot API reads it (its JSON form): rows of {"text", "callback_data"}
# buttons under "inline_keyboard". Built as plain data rather than python-telegram-bot
# objects, whose generic serialisation was a third of sending a reply (docs/performance.md).
Keyboard = dict[str, list[list[dict[str, str]]]]


@dataclass(frozen=True)
class Rendered:
    """A reply as Telegram messages: escaped HTML pieces, the keyboard goes on the last one."""

    pieces: list[str]
    keyboard: Keyboard | None = None


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


def render(layout: ReplyLayout) -> Rendered:
    """The text (and the title of its suggestions), the choices one a row, and the feedback
    buttons side by side on a last row."""
    text = f"{layout.text}\n\n{layout.related_title}" if layout.related_title else layout.text
    none_of_these = tuple(choice for choice in layout.choices if choice.intent is None)
    rows = list(_choice_rows(layout.answers[:MAX_BUTTONS] + none_of_these))
    if layout.feedback:
        rows.append([_button(control.label, control.payload) for control in layout.feedback])
    return Rendered(html_pieces(text), _keyboard(rows))


# A bot shows the same few lists of choices again and again (every fallback lists all topics),
# so their rows are built once and shared; nothing changes them once built.
@functools.lru_cache(maxsize=1024)
def _choice_rows(choices: tuple[Choice, ...]) -> tuple[list[dict[str, str]], ...]:
    # One button a row: the labels are whole questions.
    return tuple([_button(choice.label, choice.payload)] for choice in choices)


def _button(label: str, payload: str) -> dict[str, str]:
    return {"text": label, "callback_data": payload}


def _keyboard(rows: list[list[dict[str, str]]]) -> Keyboard | None:
    return {"inline_keyboard": rows} if rows else None


def keyboard_after_feedback(keyboard: InlineKeyboardMarkup | None,
                            instead: tuple[FeedbackControl, ...]) -> Keyboard | None:
    """A message's keyboard (as Telegram sent it back) without its feedback buttons, then
    `instead` one a row."""
    rows = [[_button(button.text, button.callback_data)
             for button in row
             if isinstance(button.callback_data, str) and not is_feedback(button.callback_data)]
            for row in (keyboard.inline_keyboard if keyboard else ())]
    instead_rows = [[_button(control.label, control.payload)] for control in instead]
    return _keyboard([row for row in rows if row] + instead_rows)


class TelegramReplies:
    """The front door's way back to one Telegram chat: replies to a message, or, for a button
    click, toasts and edits of the clicked message (`query`)."""

    tells_refusal = False  # a chat outside the allow-list learns nothing from the bot
    private_buttons = False  # a group's members all see the same message

    def __init__(self, bot: Bot, target: Target | None,
                 query: CallbackQuery | None = None) -> None:
        self.bot = bot
        self.target = target
        self.query = query

    async def send(self, layout: ReplyLayout) -> None:
        """The reply, in the chat (nowhere for a click on a message no longer accessible)."""
        if self.target is None:
            return
        try:
            await deliver(self.bot, self.target, render(layout))
        except BadRequest as error:
            # Refused as sent (a bug of ours): the chat is still reachable, and the notice
            # goes out now, in the chat's turn, before the reply to its next message.
            logger.error("reply to %s refused: %s", chat_for_logs(self.target.chat_id),
                         type(error).__name__, exc_info=error)
            await self.notice(ui_text("error", layout.lang))

    async def notice(self, text: str | None) -> None:
        """A toast for a button (always acknowledged), else a reply."""
        if self.query is not None:
            await acknowledge(self.query, text)
        elif self.target is not None and text:
            try:
                await deliver(self.bot, self.target, Rendered(html_pieces(text)))
            except TelegramError as error:
                logger.warning("could not send a notice to %s: %s",
                               chat_for_logs(self.target.chat_id), type(error).__name__)

    async def replace_feedback(self, instead: tuple[FeedbackControl, ...]) -> None:
        """Replace the feedback buttons of the clicked message by `instead` (a message too old
        to edit keeps them: the click was recorded all the same)."""
        message = self.query.message if self.query else None
        if self.query is None or not isinstance(message, Message):  # inaccessible: too old
            return
        keyboard = keyboard_after_feedback(message.reply_markup, instead)
        try:
            await call_unparsed(self.bot, "editMessageReplyMarkup", {
                "chat_id": message.chat.id, "message_id": message.message_id,
                "reply_markup": keyboard})
        except TelegramError as error:
            logger.warning("could not edit the feedback buttons: %s", error)

    async def feedback_recorded(self, outcome: FeedbackOutcome) -> None:
        """A toast; the asker's first click replaces the feedback buttons."""
        await self.notice(outcome.thanks)
        if outcome.mine and outcome.first:
            await self.replace_feedback(outcome.instead)


async def refuse_inline(query: InlineQuery) -> None:
    """No results: what silence would show."""
    try:
        await query.answer([], is_personal=True)
    except TelegramError as error:
        logger.warning("could not answer a refused inline query: %s", type(error).__name__)


async def acknowledge(query: CallbackQuery, text: str | None = None) -> None:
    """Stop the button's spinner; if Telegram refuses (query too old), still go on."""
    try:
        await query.answer(text)
    except TelegramError as error:
        logger.warning("could not acknowledge a button click: %s", error)


async def deliver(bot: Bot, target: Target, rendered: Rendered) -> None:
    """Send the pieces in order; quote the question with the first, buttons on the last."""
    last = len(rendered.pieces) - 1
    for index, piece in enumerate(rendered.pieces):
        quote = (ReplyParameters(target.quote_id, allow_sending_without_reply=True)
                 if index == 0 and target.quote_id else None)
        await call_unparsed(bot, "sendMessage", {
            "chat_id": target.chat_id, "text": piece, "parse_mode": ParseMode.HTML,
            "reply_markup": rendered.keyboard if index == last else None,
            "reply_parameters": quote, "message_thread_id": target.thread_id})


def retry_after_seconds(error: RetryAfter) -> float:
    """The wait flood control asks for, in seconds."""
    with warnings.catch_warnings():
        # The attribute is an int today and a timedelta later; either way we want seconds.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def judge(error: Exception) -> Retry | None:
    """What a failed Bot API call means for the retry policy: flood control waits what
    Telegram asks; a network error, a timeout or a 5xx backs off; the rest (400, 403) is final."""
    if isinstance(error, RetryAfter):
        return Retry(after=retry_after_seconds(error))
    if isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        return Retry()
    return None


class RetryingSender(BaseRateLimiter[None]):
    """The front door's retry policy on every Bot API call but getUpdates (which has its own
    loop): python-telegram-bot passes each call through its "rate limiter" hook.

    A call out of attempts, or still waiting when the stop's drain deadline passes
    (`policy.stop_waiting`), goes to the error handler, as does a final failure.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(  # noqa: PLR0917 (signature fixed by BaseRateLimiter)
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Call the Bot API, waiting and retrying as the failure asks."""
        return await self.policy.run(lambda: callback(*args, **kwargs), judge, endpoint)
