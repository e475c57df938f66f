"""Sending to Telegram: retries and flood control, acknowledging clicks, editing keyboards,
delivering the pieces of a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineQuery,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    BaseRateLimiter,
)
from telegram.warnings import PTBDeprecationWarning

from bots.telegram.parsing import _Target
from bots.telegram.rendering import Rendered, keyboard_after_feedback

logger = logging.getLogger(__name__)

def _retry_after_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        # The attribute is an int today and a timedelta later; either way we want seconds.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class RetryingRateLimiter(BaseRateLimiter[None]):
    """Honours Telegram's flood control and retries transient failures, so no reply is lost.

    Plugged in as PTB's rate limiter because every Bot API call but getUpdates passes through
    it (getUpdates has its own retry loop in the Updater). A 429 waits the `retry_after` Telegram
    asks for; a network error, a timeout or a 5xx waits with exponential backoff. Anything else
    (a 400, a 403) is final and goes to the error handler, as does a call out of attempts or
    one still waiting when the stop's drain deadline passes (`stop_waiting`). A timed-out send
    may have been delivered: retrying it risks a duplicate, never a loss.
    """

    def __init__(self, attempts: int = 5, backoff: float = 0.5, max_backoff: float = 8.0,
                 max_retry_after: float = 60.0) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._stopping = asyncio.Event()

    def stop_waiting(self) -> None:
        """Make the calls waiting to retry give up now: the stop's drain deadline passed."""
        self._stopping.set()

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
        attempt = 1
        while True:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                delay = _retry_after_seconds(error)
                if attempt >= self.attempts or delay > self.max_retry_after:
                    raise
                logger.warning("Telegram flood control on %s: retrying in %.1f s", endpoint, delay)
                if await self._stopped_during(delay):
                    raise
            except BadRequest:
                raise
            except NetworkError as error:  # also timeouts and HTTP 5xx
                if attempt >= self.attempts:
                    raise
                delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                logger.warning("Telegram %s failed (%s): retry %d in %.1f s",
                               endpoint, error, attempt, delay)
                if await self._stopped_during(delay):
                    raise
            attempt += 1

    async def _stopped_during(self, delay: float) -> bool:
        """Wait `delay` seconds; True if the bot started stopping meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stopping.wait()
        return self._stopping.is_set()


async def _refuse_inline(query: InlineQuery) -> None:
    """No results: what silence would show."""
    try:
        await query.answer([], is_personal=True)
    except TelegramError as error:
        logger.warning("could not answer a refused inline query: %s", type(error).__name__)


async def _acknowledge(query: CallbackQuery, text: str | None = None) -> None:
    """Stop the button's spinner; if Telegram refuses (query too old), still go on."""
    try:
        await query.answer(text)
    except TelegramError as error:
        logger.warning("could not acknowledge a button click: %s", error)


async def _edit_keyboard(query: CallbackQuery, instead: list[InlineKeyboardButton]) -> None:
    """Replace the feedback buttons of the clicked message by `instead` (a message too old to
    edit keeps them: the click was recorded all the same)."""
    message = query.message
    if not isinstance(message, Message):  # inaccessible: too old to show or edit
        return
    keyboard = keyboard_after_feedback(message.reply_markup, instead)
    try:
        await query.edit_message_reply_markup(keyboard)
    except TelegramError as error:
        logger.warning("could not edit the feedback buttons: %s", error)


async def _deliver(bot: Bot, target: _Target, rendered: Rendered) -> None:
    """Send the pieces in order; quote the question with the first, buttons on the last."""
    last = len(rendered.pieces) - 1
    for index, piece in enumerate(rendered.pieces):
        quote = (ReplyParameters(target.quote_id, allow_sending_without_reply=True)
                 if index == 0 and target.quote_id else None)
        await bot.send_message(
            target.chat_id, piece, parse_mode=ParseMode.HTML,
            reply_markup=rendered.keyboard if index == last else None,
            reply_parameters=quote, message_thread_id=target.thread_id)
