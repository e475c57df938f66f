"""The Telegram update handlers: screening, messages and commands, buttons, inline mode, errors."""

from __future__ import annotations

import itertools
import logging
import textwrap
from collections.abc import Awaitable
from typing import Any

from telegram import (
    CallbackQuery,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bots import feedback
from bots.common import AccessPolicy, RateLimiter, ui_text
from bots.feedback import FeedbackClick
from bots.service import Asker, FAQService
from bots.telegram.config import Context, TelegramApp
from bots.telegram.delivery import _acknowledge, _deliver, _edit_keyboard, _refuse_inline
from bots.telegram.parsing import (
    _asker,
    _chat_for_logs,
    _Target,
    _user_language,
    command_argument,
    is_addressed,
    question_text,
)
from bots.telegram.processing import _discard, _RecentIds
from bots.telegram.rendering import (
    Rendered,
    choice_buttons,
    html_pieces,
    render_reply,
    render_text,
    render_topics,
)
from core import FAQBot, Reply, Settings, Suggestion, guess_language
from core.errors import UnknownIntentError

logger = logging.getLogger(__name__)

INLINE_RESULTS = 10

DUPLICATE_WINDOW = 2048

COMMAND_DESCRIPTIONS = {
    "fr": {"start": "Commencer et voir les sujets",
           "help": "Comment me poser une question",
           "faq": "Voir les questions auxquelles je réponds",
           "ask": "Poser une question (utile dans un groupe)"},
    "en": {"start": "Start and see the topics",
           "help": "How to ask me a question",
           "faq": "See the questions I can answer",
           "ask": "Ask a question (handy in groups)"},
}
START_TEXT = {"fr": "Bonjour ! Posez-moi votre question, ou choisissez un sujet :",
              "en": "Hello! Ask me your question, or pick a topic:"}
HELP_TEXT = {
    "fr": "Posez votre question en quelques mots, en français ou en anglais : je réponds avec "
          "les réponses de la FAQ. Dans un groupe, mentionnez @{bot}, répondez à l'un de mes "
          "messages ou écrivez /ask suivi de votre question. /faq affiche les sujets.",
    "en": "Ask your question in a few words, in French or English: I answer from the FAQ. "
          "In a group, mention @{bot}, reply to one of my messages or write /ask followed by "
          "your question. /faq shows the topics.",
}


def _pick(texts: dict[str, str], lang: str) -> str:
    return texts.get(lang, texts["en"])

class _Handlers:
    """The update handlers, sharing the engine, the per-user rate limit and the allow-list."""

    def __init__(self, faq: FAQBot | FAQService, settings: Settings) -> None:
        self.faq = FAQService.of(faq)
        self.limiter = RateLimiter(settings.rate_limit_messages, settings.rate_limit_seconds)
        self.access = AccessPolicy(settings.allowed_chats)
        self._recent = _RecentIds(DUPLICATE_WINDOW)
        self._screened = itertools.count(1)
        self.feedback = settings.feedback

    def register(self, application: TelegramApp) -> None:
        """Attach every handler (screening is done before, by `admit`)."""
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

    def _lang(self, update: Update) -> str:
        return self.faq.language(_user_language(update))

    # -- screening ------------------------------------------------------------------------

    def screen(self, update: object, processing: Awaitable[Any]) -> Awaitable[Any] | None:
        """What to do with an update as it arrives, before it waits for its chat: its
        `processing`, a notice instead (a flood, a refused inline query), or None to drop it
        (a duplicate, group chatter not meant for the bot, a refused chat, a flood again)."""
        work = self._screened_work(update, processing)
        if work is not processing:
            _discard(processing)
        return work

    def _screened_work(self, update: object,
                       processing: Awaitable[Any]) -> Awaitable[Any] | None:
        if not isinstance(update, Update):
            return None
        if self._recent.seen(update.update_id):
            logger.info("dropped update %d: delivered twice", update.update_id)
            return None
        if next(self._screened) % 1000 == 0:
            self.limiter.forget_idle()
        if update.inline_query:
            return self._screen_inline(update.inline_query, processing)
        bot = update.get_bot()
        if update.message and not is_addressed(update.message, bot.id, bot.username):
            return None
        return self._screen_chat(update, processing)

    def _screen_chat(self, update: Update,
                     processing: Awaitable[Any]) -> Awaitable[Any] | None:
        """The allow-list, then the per-user rate limit (one notice per flood)."""
        chat = update.effective_chat
        if not self.access.permits(chat.id if chat else None):
            # No answer at all, not even a notice (nor a flood warning: hence before the rate
            # limit): a chat outside the allow-list learns nothing from the bot. Counted.
            self.faq.count_refusal("telegram")
            logger.info("refused %s: not in FAQBOT_ALLOWED_CHATS",
                        _chat_for_logs(chat.id if chat else None))
            return None
        user = update.effective_user
        verdict = self.limiter.check(user.id) if user else "drop"
        if verdict == "allow":
            return processing
        if verdict == "notify" or update.callback_query:  # a button is always acknowledged
            notice = ui_text("rate_limited", self._lang(update)) if verdict == "notify" else None
            return self._notice(update, notice)
        return None

    def _screen_inline(self, query: InlineQuery,
                       processing: Awaitable[Any]) -> Awaitable[Any]:
        # Inline queries come letter by letter, so they are not rate limited; they carry no
        # chat, so the allow-list applies to the user's own (private) chat id.
        if self.access.permits(query.from_user.id):
            return processing
        self.faq.count_refusal("telegram")
        return _refuse_inline(query)

    async def _notice(self, update: Update, text: str | None) -> None:
        """A short notice: a toast for a button (always acknowledged), else a reply."""
        if update.callback_query:
            await _acknowledge(update.callback_query, text)
        elif update.message and text:
            try:
                await _deliver(update.get_bot(), _Target.replying_to(update.message),
                               render_text(text))
            except TelegramError as error:
                logger.warning("could not send a notice to %s: %s",
                               _chat_for_logs(update.message.chat_id), type(error).__name__)

    # -- messages and commands --------------------------------------------------------------

    async def on_message(self, update: Update, context: Context) -> None:
        """Any text (or caption) in a private chat, or addressed to the bot in a group."""
        message = update.message
        assert message is not None
        question = question_text(message, context.bot.username)
        await _deliver(context.bot, _Target.replying_to(message), self._answer(question, update))

    async def on_ask(self, update: Update, context: Context) -> None:
        """/ask <question>: answers; without a question, says how to use it."""
        message = update.message
        assert message is not None
        question = command_argument(message)
        if not question:
            rendered = render_text(ui_text("ask_usage", self._lang(update)))
        else:
            rendered = self._answer(question, update)
        await _deliver(context.bot, _Target.replying_to(message), rendered)

    def _answer(self, question: str, update: Update) -> Rendered:
        """The rendered reply to a question, with feedback buttons under a curated answer."""
        reply, ticket = self.faq.answer_with_feedback(
            question, lang_hint=_user_language(update), asker=_asker(update),
            feedback=self.feedback)
        return render_reply(reply, ticket)

    async def on_start(self, update: Update, context: Context) -> None:
        """/start: a greeting and the topics as buttons."""
        lang = self._lang(update)
        await self._send_topics(update, context, _pick(START_TEXT, lang), lang)

    async def on_faq(self, update: Update, context: Context) -> None:
        """/faq: the topics as buttons."""
        lang = self._lang(update)
        await self._send_topics(update, context, ui_text("topics_title", lang), lang)

    async def on_help(self, update: Update, context: Context) -> None:
        """/help (and unknown commands): how to ask."""
        assert update.message is not None
        text = _pick(HELP_TEXT, self._lang(update)).format(bot=context.bot.username)
        await _deliver(context.bot, _Target.replying_to(update.message), render_text(text))

    async def _send_topics(self, update: Update, context: Context, intro: str,
                           lang: str) -> None:
        assert update.message is not None
        rendered = render_topics(intro, self.faq.topics(lang), lang)
        await _deliver(context.bot, _Target.replying_to(update.message), rendered)

    # -- buttons and inline mode -------------------------------------------------------------

    async def on_button(self, update: Update, context: Context) -> None:
        """A button click: acknowledged at once, then answered in the chat it came from."""
        query = update.callback_query
        assert query is not None
        click = feedback.parse(query.data or "")
        if click is not None:
            await self._on_feedback(query, click, _asker(update), context)
            return
        reply = self._reply_for_button(query.data or "", _asker(update))
        if reply is None or query.message is None:
            await _acknowledge(query, ui_text("stale_button", self._lang(update)))
            return
        await _acknowledge(query)
        message = query.message
        target = (_Target.replying_to(message) if isinstance(message, Message)
                  else _Target(message.chat.id))
        await _deliver(context.bot, target, render_reply(reply))

    def _reply_for_button(self, data: str, asker: Asker) -> Reply | None:
        """The reply a button asks for, or None for a stale or unknown button."""
        kind, _, rest = data.partition(":")
        if kind == "n" and rest:
            return self.faq.none_of_these(rest, asker=asker)
        intent, _, lang = rest.partition(":")
        if kind == "a" and intent and lang:
            try:
                return self.faq.choose(intent, lang, asker=asker)
            except UnknownIntentError:
                return None
        return None

    async def _on_feedback(self, query: CallbackQuery, click: FeedbackClick, asker: Asker,
                           context: Context) -> None:
        """A feedback click: recorded, acknowledged with a toast; the asker's first click
        replaces the feedback buttons (by the topics to choose instead, after "not helpful")."""
        if click.action == "c":
            await self._on_choice_instead(query, click, asker, context)
            return
        mine = click.asker == self.faq.asker_tag(click.ref, asker)
        first = self.faq.record_feedback(click, asker)
        # Offered to the asker only: anyone else's view of the message must not change.
        topics = self.faq.alternatives(click) if click.action == "n" and mine and first else []
        toast = "feedback_alternatives" if topics else "feedback_thanks"
        await _acknowledge(query, ui_text(toast, click.lang))
        if mine and first:
            await _edit_keyboard(query, choice_buttons(click, topics, click.asker))

    async def _on_choice_instead(self, query: CallbackQuery, click: FeedbackClick,
                                 asker: Asker, context: Context) -> None:
        """A topic chosen after "not helpful": its answer in the chat, like a clarification's
        choice; the asker's choice also takes the choices off the message."""
        try:
            reply = self.faq.choose_instead(click, asker)
        except UnknownIntentError:  # the knowledge base changed since the message was sent
            await _acknowledge(query, ui_text("stale_button", click.lang))
            return
        await _acknowledge(query)
        message = query.message
        if message is None:
            return
        if click.asker == self.faq.asker_tag(click.ref, asker):
            await _edit_keyboard(query, [])
        target = (_Target.replying_to(message) if isinstance(message, Message)
                  else _Target(message.chat.id))
        await _deliver(context.bot, target, render_reply(reply))

    async def on_inline(self, update: Update, context: Context) -> None:
        """@bot question in any chat: the best matching answers as inline results."""
        query = update.inline_query
        assert query is not None
        lang = self.faq.language(guess_language(query.query) or query.from_user.language_code)
        suggestions = self.faq.suggest(query.query, lang, limit=INLINE_RESULTS)
        results = [self._inline_article(suggestion, lang) for suggestion in suggestions]
        # Personal: with an empty query the results follow each user's language.
        await query.answer(results, is_personal=True)

    def _inline_article(self, suggestion: Suggestion, lang: str) -> InlineQueryResultArticle:
        answer = self.faq.reply_for(suggestion.intent, lang).answer
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
        try:
            await _deliver(context.bot, _Target(update.effective_chat.id),
                           render_text(ui_text("error", self._lang(update))))
        except TelegramError as notice_error:
            logger.warning("could not tell %s about the error: %s",
                           _chat_for_logs(update.effective_chat.id), type(notice_error).__name__)
