"""The Telegram update handlers: each parses its kind of update into the front door.

Messages, commands and button clicks go through `FrontDoor` (admission, the chat's turn, the
answer) with a `TelegramReplies` to reply in the chat; inline queries are searches; a failed
update is logged and, when a message can still get through, the user is told.
"""

from __future__ import annotations

import logging
import textwrap

from telegram import InlineQueryResultArticle, InputTextMessageContent, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bots.frontdoor.door import FrontDoor
from bots.frontdoor.replies import text_layout
from bots.frontdoor.texts import ui_text
from bots.telegram.config import Context, TelegramApp
from bots.telegram.parsing import (
    Target,
    arrival,
    chat_for_logs,
    command_argument,
    is_addressed,
    question_text,
)
from bots.telegram.replying import (
    TelegramReplies,
    deliver,
    html_pieces,
    refuse_inline,
    render,
)
from core import Suggestion, guess_language

logger = logging.getLogger(__name__)

INLINE_RESULTS = 10


class Handlers:
    """The update handlers of one application, in front of one `FrontDoor`."""

    def __init__(self, door: FrontDoor) -> None:
        self.door = door

    def register(self, application: TelegramApp) -> None:
        """Attach every handler."""
        application.add_handler(CommandHandler("start", self.on_start))
        application.add_handler(CommandHandler("help", self.on_help))
        application.add_handler(CommandHandler("faq", self.on_faq))
        application.add_handler(CommandHandler("ask", self.on_ask))
        application.add_handler(MessageHandler(filters.COMMAND, self.on_help))  # unknown ones
        application.add_handler(MessageHandler((filters.TEXT | filters.ATTACHMENT)
                                               & ~filters.COMMAND, self.on_message))
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_handler(InlineQueryHandler(self.on_inline))
        application.add_error_handler(self.on_error)

    # -- messages and commands --------------------------------------------------------------

    async def on_message(self, update: Update, context: Context) -> None:
        """Any text (or caption) in a private chat, or addressed to the bot in a group."""
        message = self._addressed(update)
        if message is not None:
            question = question_text(message, context.bot.username)
            await self.door.ask(arrival(update), question, _replies_to(message))

    async def on_ask(self, update: Update, context: Context) -> None:
        """/ask <question>: answers; without a question, says how to use it."""
        message = self._addressed(update)
        if message is None:
            return
        question = command_argument(message)
        if question:
            await self.door.ask(arrival(update), question, _replies_to(message))
        else:
            text = ui_text("ask_usage", self.door.language(arrival(update).lang_hint))
            await self.door.say(arrival(update), text, _replies_to(message))

    async def on_start(self, update: Update, context: Context) -> None:
        """/start: a greeting and the topics as buttons."""
        if message := self._addressed(update):
            await self.door.show_topics(arrival(update), "start", _replies_to(message))

    async def on_faq(self, update: Update, context: Context) -> None:
        """/faq: the topics as buttons."""
        if message := self._addressed(update):
            await self.door.show_topics(arrival(update), "topics_title", _replies_to(message))

    async def on_help(self, update: Update, context: Context) -> None:
        """/help (and unknown commands): how to ask."""
        if message := self._addressed(update):
            lang = self.door.language(arrival(update).lang_hint)
            text = ui_text("help", lang).format(bot=context.bot.username)
            await self.door.say(arrival(update), text, _replies_to(message))

    @staticmethod
    def _addressed(update: Update) -> Message | None:
        # In a group, only what is meant for the bot: the rest is chatter, ignored unseen.
        message = update.message
        bot = update.get_bot()
        if message is None or not is_addressed(message, bot.id, bot.username):
            return None
        return message

    # -- buttons and inline mode -------------------------------------------------------------

    async def on_button(self, update: Update, context: Context) -> None:
        """A button click: acknowledged, then answered in the chat it came from."""
        query = update.callback_query
        assert query is not None
        message = query.message
        target = (None if message is None else Target.replying_to(message)
                  if isinstance(message, Message) else Target(message.chat.id))
        replies = TelegramReplies(context.bot, target, query)
        await self.door.click(arrival(update), query.data or "", replies)

    async def on_inline(self, update: Update, context: Context) -> None:
        """@bot question in any chat: the best matching answers as inline results."""
        query = update.inline_query
        assert query is not None
        lang = self.door.language(guess_language(query.query) or query.from_user.language_code)
        found = self.door.search(arrival(update), query.query, lang, INLINE_RESULTS)
        if found is None:
            await refuse_inline(query)
            return
        results = [self._inline_article(suggestion, lang) for suggestion in found]
        # Personal: with an empty query the results follow each user's language.
        await query.answer(results, is_personal=True)

    def _inline_article(self, suggestion: Suggestion, lang: str) -> InlineQueryResultArticle:
        answer = self.door.service.reply_for(suggestion.intent, lang).answer
        content = InputTextMessageContent(html_pieces(answer)[0], parse_mode=ParseMode.HTML)
        return InlineQueryResultArticle(id=suggestion.intent, title=suggestion.question,
                                        input_message_content=content,
                                        description=textwrap.shorten(answer, 100,
                                                                     placeholder="…"))

    # -- errors --------------------------------------------------------------------------------

    async def on_error(self, update: object, context: Context) -> None:
        """Log a failed update and, when a message can still get through, tell the user."""
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        if isinstance(error, InvalidToken):  # polling stops the bot with one clear line
            logger.error("update %s failed: Telegram refused the token", update_id)
            return
        logger.error("update %s failed: %s", update_id, type(error).__name__, exc_info=error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        # A 400 (or a bug of ours) leaves the chat reachable; after a failed delivery
        # (403, network, flood) another message would fail the same way.
        if isinstance(error, TelegramError) and not isinstance(error, BadRequest):
            return
        lang = self.door.language(arrival(update).lang_hint)
        try:
            await deliver(context.bot, Target(update.effective_chat.id),
                          render(text_layout(ui_text("error", lang), lang)))
        except TelegramError as notice_error:
            logger.warning("could not tell %s about the error: %s",
                           chat_for_logs(update.effective_chat.id), type(notice_error).__name__)


def _replies_to(message: Message) -> TelegramReplies:
    return TelegramReplies(message.get_bot(), Target.replying_to(message))
