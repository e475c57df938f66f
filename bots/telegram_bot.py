"""Telegram front door: turns updates into questions for FAQBot and its Replies into messages.

The adapter decides nothing about meaning. It extracts the text and its context (private chat or
group, was the bot addressed, the user's language), screens the update (duplicates, allow-list,
per-user rate limit), asks `FAQBot` (through `FAQService`, which logs and counts the question),
and renders the `Reply` as HTML with inline buttons; under a curated answer, two feedback
buttons (bots/feedback.py). A feedback click is acknowledged with a toast; only the asker's
click edits the message (a group shares it): the buttons go, or "not helpful" puts the
closest other topics in their place.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hmac
import html
import itertools
import logging
import re
import secrets
import textwrap
import time
import warnings
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType, MessageLimit, ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning

from bots import feedback
from bots.common import AccessPolicy, RateLimiter, SecretFilter, split_message, ui_text
from bots.feedback import FeedbackClick, FeedbackTicket
from bots.service import Asker, FAQService
from bots.telegram_transport import AiohttpRequest
from core import ConfigurationError, FAQBot, Reply, Settings, Suggestion, guess_language
from core.errors import UnknownIntentError

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
TelegramApp = Application[Any, Any, Any, Any, Any, Any]

TOKEN_PATTERN = re.compile(r"\d+:[A-Za-z0-9_-]{20,}")
MAX_TEXT = int(MessageLimit.MAX_TEXT_LENGTH)
# Telegram caps an inline keyboard at about 100 buttons; a long topic list stays well below.
MAX_BUTTONS = 50
INLINE_RESULTS = 10
POLL_TIMEOUT = dt.timedelta(seconds=30)
# Updates are handled concurrently, up to this many at once (those of one chat stay in order).
CONCURRENT_UPDATES = 256
# Updates fetched and not finished yet: polling fetches no more, so that a stop can finish them.
MAX_IN_HAND = 2 * CONCURRENT_UPDATES
# Updates of one chat waiting for their turn; more are dropped (a flood: every user of the chat
# already told once by the rate limit). Well below MAX_IN_HAND, so that a chat stuck in flood
# control cannot hold every update fetched; above what a busy group sends in a burst.
MAX_WAITING_PER_CHAT = 128
# getUpdates returns at most this many updates from its offset (Telegram's maximum limit).
GET_UPDATES_LIMIT = 100
# A poll goes out once it may bring at least half a batch of new updates: python-telegram-bot
# parses every update Telegram returns, and those in hand come back while the offset is held.
REFILL_AT = GET_UPDATES_LIMIT // 2
# An update is confirmed to Telegram once finished; one unfinished this long is confirmed all
# the same once it keeps newer updates from being fetched (a chat in long flood control would
# hold up every other chat), or with a webhook once its request has been open that long.
MAX_HOLD_SECONDS = 3.0
# While an unfinished update holds the offset, Telegram answers a poll at once (with the updates
# in hand): after a poll that was not full, the next waits until every update in hand is
# finished, or this long.
HELD_POLL_PAUSE = 0.5
# On a stop, the updates in hand get this long to finish, retries included.
DRAIN_SECONDS = 10.0
# A failed getUpdates is tried again after 1, 2, 4... s, at most this long apart.
MAX_POLL_BACKOFF = 30.0
# With a webhook, how often to ask Telegram whether it is still set (for the health check).
WEBHOOK_CHECK_SECONDS = 60.0
# Webhook requests Telegram keeps open at once (its maximum): each waits for its update's answer.
WEBHOOK_CONNECTIONS = 100
DUPLICATE_WINDOW = 2048
REQUEST_TIMEOUTS = {"connect_timeout": 5.0, "read_timeout": 10.0, "pool_timeout": 5.0}
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]
OUR_COMMANDS = ("start", "help", "faq", "ask")
# PTB logs request URLs (which hold the token) and parameters (the webhook secret) here.
LIBRARY_LOGGERS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

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


# ---------------------------------------------------------------------------------------------
# Configuration


def check_token(token: str) -> None:
    """Raise ConfigurationError if `token` does not look like a bot token; never echo it."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is malformed: expected <digits>:<secret>")


@dataclass(frozen=True)
class WebhookOptions:
    """Receive updates by webhook: Telegram posts to `url`, a proxy forwards to listen:port."""

    url: str
    listen: str = "127.0.0.1"
    port: int = 8443


def api_base_url(url: str) -> str:
    """The Bot API base the token is appended to: "http://host:8081/" gives ".../bot"."""
    base = url.rstrip("/")
    return base if base.endswith("/bot") else f"{base}/bot"


_HIDDEN_SECRETS: set[str] = set()


def _hide_secrets_in_library_logs(*secrets_to_hide: str) -> None:
    """Mask secrets in the records of the loggers that print request URLs and parameters.

    The CLI also filters its handlers; this covers every other way of running the adapter.
    """
    new = [secret for secret in secrets_to_hide if secret not in _HIDDEN_SECRETS]
    if not new:
        return
    _HIDDEN_SECRETS.update(new)
    secret_filter = SecretFilter(new)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(secret_filter)


# ---------------------------------------------------------------------------------------------
# Rendering: Reply -> HTML pieces and inline keyboard


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


# ---------------------------------------------------------------------------------------------
# Reading updates


def is_addressed(message: Message, bot_id: int, bot_username: str) -> bool:
    """Private chats always; in groups a @mention, a reply to the bot, or a command for it."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    replied = message.reply_to_message
    if replied and replied.from_user and replied.from_user.id == bot_id:
        return True
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.BOT_COMMAND]
    entities = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    mention = f"@{bot_username}".casefold()
    for entity, text in entities.items():
        if entity.type == MessageEntity.MENTION and text.casefold() == mention:
            return True
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            command, _, target = text[1:].partition("@")
            if target.casefold() == bot_username.casefold() or (
                    not target and command.casefold() in OUR_COMMANDS):
                return True
    return False


def question_text(message: Message, bot_username: str) -> str:
    """The text or caption of a message, without the @mention of the bot."""
    text = message.text or message.caption or ""
    return re.sub(rf"@{re.escape(bot_username)}\b", " ", text, flags=re.IGNORECASE).strip()


def command_argument(message: Message) -> str:
    """What follows "/ask" (or "/ask@bot") in a command message."""
    parts = (message.text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def _user_language(update: Update) -> str | None:
    user = update.effective_user
    return user.language_code if user else None


def _asker(update: Update) -> Asker:
    """Who sent the update, for the question log (which stores only pseudonyms)."""
    chat, user, message = update.effective_chat, update.effective_user, update.effective_message
    return Asker("telegram", chat.id if chat else None, user.id if user else None,
                 message.message_id if message else None)


def _chat_for_logs(chat_id: int | None) -> str:
    # A private chat's id is its user's id: logs name group chats (negative ids) only.
    if chat_id is not None and chat_id < 0:
        return f"group {chat_id}"
    return "a private chat"


@dataclass(frozen=True)
class _Target:
    """Where a reply goes: the chat, the message to quote (groups only), the forum topic."""

    chat_id: int
    quote_id: int | None = None
    thread_id: int | None = None

    @classmethod
    def replying_to(cls, message: Message) -> _Target:
        in_group = message.chat.type != ChatType.PRIVATE
        return cls(chat_id=message.chat_id,
                   quote_id=message.message_id if in_group else None,
                   thread_id=message.message_thread_id if message.is_topic_message else None)


# ---------------------------------------------------------------------------------------------
# Delivery: flood control, retries, ordering


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


# What to do with an update as it arrives (see _Handlers.screen): its processing, other work
# instead, or None to drop it.
Screen = Callable[[object, Awaitable[Any]], Awaitable[Any] | None]


class UpdatesInHand:
    """The updates taken from Telegram and not finished yet, and what may be confirmed.

    Telegram forgets an update once it is confirmed: by the `offset` of a later getUpdates
    (every update below it), or by a 2xx answer to its webhook request. An update is confirmed
    only once finished (answered, or dropped and counted), so a process killed with SIGKILL
    loses none: Telegram gives the unconfirmed ones to the next process, which answers again
    those finished but not confirmed yet (at least once).

    The offset is one watermark and getUpdates returns at most GET_UPDATES_LIMIT updates from
    it, so polling from the first unfinished update gives back the later ones already taken
    (`window` sizes the poll so that it may bring new ones), and one update that stays
    unfinished would keep every other chat from getting new updates. Hence the one exception:
    an update in hand for MAX_HOLD_SECONDS stops holding back confirmation once it does keep new
    updates from being fetched (or, by webhook, once its request has been open that long). It
    is logged, and lost if the process dies before it finishes. At most `limit` updates are in
    hand, so that a stop can finish them.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.next_offset = 0  # the id after the last update taken
        self._taken: dict[int, float] = {}  # unfinished update id -> when it was taken
        self._let_go: set[int] = set()  # unfinished, confirmed all the same (held too long)
        # The ids taken at or above the offset, in order (only a count up to the limit counts).
        self._unconfirmed: deque[int] = deque(maxlen=GET_UPDATES_LIMIT)
        self._waiters: dict[int, asyncio.Future[bool]] = {}  # webhook requests awaiting an id
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._taken)

    def take(self, update_id: int) -> bool:
        """Hold an update fetched (or received by webhook) until it is finished; False if it
        is in hand already."""
        if update_id in self._taken:
            return False
        self._taken[update_id] = time.monotonic()
        if update_id >= self.next_offset:
            self._unconfirmed.append(update_id)
            self.next_offset = update_id + 1
        return True

    def finish(self, update_id: int) -> None:
        """An update was handled (answered, screened out, or given up with an error logged)."""
        self._taken.pop(update_id, None)
        self._let_go.discard(update_id)
        waiter = self._waiters.pop(update_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(True)
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def offset(self) -> int:
        """The getUpdates offset that confirms every update below the first unfinished one."""
        return min(self._taken.keys() - self._let_go, default=self.next_offset)

    async def window(self) -> tuple[int, int]:
        """The offset and limit of the next getUpdates, once it may bring new updates: there
        is room in hand, and at most REFILL_AT updates taken would come back with them."""
        while True:
            again = self._taken_since(self.offset)
            room = self.limit - len(self._taken)
            if room > 0 and again > REFILL_AT:
                self._let_go_of_overdue()
                again = self._taken_since(self.offset)
            if room > 0 and again <= REFILL_AT:
                return self.offset, min(GET_UPDATES_LIMIT, again + room)
            overdue_in = self._until_oldest_overdue() if room > 0 else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(overdue_in):
                    await self._changed.wait()

    async def caught_up(self, timeout: float) -> None:
        """Wait until no unfinished update holds the offset back, `timeout` at most."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.offset < self.next_offset:
                    await self._changed.wait()

    async def settled(self, update_id: int) -> bool:
        """Wait until the update may be confirmed: True once it is finished, or in hand for
        MAX_HOLD_SECONDS (let go); False if the stop gave it up (`give_up`)."""
        if update_id not in self._taken:
            return True
        waiter = self._waiters.get(update_id)
        if waiter is None:
            waiter = self._waiters[update_id] = asyncio.get_running_loop().create_future()
        remaining = self._taken[update_id] + MAX_HOLD_SECONDS - time.monotonic()
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(waiter), max(remaining, 0.0))
        self._let_go_of([update_id])
        return True

    def give_up(self) -> None:
        """The stop's drain ended: the webhook requests still waiting are answered as failed,
        so that Telegram sends their updates again."""
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_result(False)
        self._waiters.clear()

    def _taken_since(self, offset: int) -> int:
        """How many updates taken Telegram would give back from `offset`."""
        while self._unconfirmed and self._unconfirmed[0] < offset:
            self._unconfirmed.popleft()
        return len(self._unconfirmed)

    def _until_oldest_overdue(self) -> float | None:
        """Seconds until the oldest update holding the offset is in hand MAX_HOLD_SECONDS."""
        holding = [taken for update_id, taken in self._taken.items()
                   if update_id not in self._let_go]
        return max(min(holding) + MAX_HOLD_SECONDS - time.monotonic(), 0.0) if holding else None

    def _let_go_of_overdue(self) -> None:
        deadline = time.monotonic() - MAX_HOLD_SECONDS
        self._let_go_of([update_id for update_id, taken in self._taken.items()
                         if taken <= deadline and update_id not in self._let_go])

    def _let_go_of(self, update_ids: list[int]) -> None:
        update_ids = [update_id for update_id in update_ids if update_id in self._taken]
        if update_ids:
            self._let_go.update(update_ids)
            logger.warning("confirming %d updates unfinished after %.0f s, not to hold up "
                           "the others: a crash before they finish would lose them",
                           len(update_ids), MAX_HOLD_SECONDS)


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Screens each update on arrival, then handles those of different chats at once and those
    of one chat in arrival order.

    PTB starts one task per update in arrival order. Screening comes first (`screen`: a
    duplicate, a refused chat or a flood is dropped at once, or turned into a notice); a chat
    may then have at most `per_chat` updates waiting (more are dropped, logged once per flood,
    counted). A FIFO lock per chat makes the tasks of one chat take turns, so a user's second
    question is never answered before the first, and only the chat's current update holds one
    of the `max_concurrent` slots: a chat waiting out flood control holds one slot, not all.
    """

    def __init__(self, max_concurrent: int, screen: Screen, in_hand: UpdatesInHand,
                 on_overflow: Callable[[], None], per_chat: int = MAX_WAITING_PER_CHAT) -> None:
        # PTB takes its own slot before calling us, hence before screening and before the
        # chat's turn: it gets no real bound, the slots that count are ours.
        super().__init__(2**31 - 1)
        self._screen = screen
        self.in_hand = in_hand
        self._on_overflow = on_overflow
        self._per_chat = per_chat
        self._slots = asyncio.Semaphore(max_concurrent)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: Counter[int] = Counter()
        self._overflowing: set[int] = set()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Screen the update, then await its processing in its chat's turn."""
        update_id = update.update_id if isinstance(update, Update) else None
        if update_id is not None:
            self.in_hand.take(update_id)
        try:
            work = self._screen(update, coroutine)
            if work is None:
                return
            chat = update.effective_chat if isinstance(update, Update) else None
            if chat is None:  # inline queries: no conversation to keep in order
                async with self._slots:
                    await work
                return
            await self._in_turn(chat.id, work)
        finally:
            if update_id is not None:
                self.in_hand.finish(update_id)

    async def _in_turn(self, chat_id: int, coroutine: Awaitable[Any]) -> None:
        if self._waiting[chat_id] >= self._per_chat:
            self._on_overflow()
            if chat_id not in self._overflowing:  # one line per flood, every drop counted
                self._overflowing.add(chat_id)
                logger.warning("dropping updates of %s: %d already waiting",
                               _chat_for_logs(chat_id), self._per_chat)
            _discard(coroutine)
            return
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._waiting[chat_id] += 1
        try:
            async with lock, self._slots:
                await coroutine
        finally:
            self._waiting[chat_id] -= 1
            if not self._waiting[chat_id]:  # forget idle chats: memory stays bounded
                del self._waiting[chat_id], self._locks[chat_id]
                self._overflowing.discard(chat_id)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


def _discard(coroutine: Awaitable[Any]) -> None:
    """Drop an update's processing without running it (and without a "never awaited" warning)."""
    if isinstance(coroutine, Coroutine):
        coroutine.close()


class _RecentIds:
    """The last update ids seen, to drop an update Telegram delivers twice."""

    def __init__(self, size: int) -> None:
        self._order: deque[int] = deque()
        self._ids: set[int] = set()
        self._size = size

    def seen(self, update_id: int) -> bool:
        if update_id in self._ids:
            return True
        self._order.append(update_id)
        self._ids.add(update_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return False


# ---------------------------------------------------------------------------------------------
# Handlers


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


# ---------------------------------------------------------------------------------------------
# Application and serving


def build_application(bot: FAQBot | FAQService, settings: Settings) -> TelegramApp:
    """A python-telegram-bot Application wired to `bot`, ready to initialize and start.

    Updates reach it through `application.update_queue`, put there by `serve` (long polling or
    webhook); PTB's own Updater is left unused.
    """
    if settings.telegram_bot_token is None:
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is not set")
    token = settings.telegram_bot_token.get_secret_value()
    check_token(token)
    _hide_secrets_in_library_logs(token)
    base = api_base_url(settings.telegram_api_url)
    service = FAQService.of(bot)
    handlers = _Handlers(service, settings)
    processor = ChatOrderedProcessor(CONCURRENT_UPDATES, handlers.screen,
                                     UpdatesInHand(MAX_IN_HAND),
                                     on_overflow=lambda: service.count_dropped("telegram"))
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(base)
        .base_file_url(base.removesuffix("/bot") + "/file/bot")
        # aiohttp rather than httpx: a third of the bot's CPU under load (bots/telegram_transport)
        .request(AiohttpRequest(pool_size=CONCURRENT_UPDATES, **REQUEST_TIMEOUTS))
        .get_updates_request(AiohttpRequest(pool_size=1, **REQUEST_TIMEOUTS))
        .concurrent_updates(processor)
        .rate_limiter(RetryingRateLimiter())
        .updater(None)
        .build()
    )
    handlers.register(application)
    return application


def _in_hand(application: TelegramApp) -> UpdatesInHand:
    processor = application.update_processor
    assert isinstance(processor, ChatOrderedProcessor)
    return processor.in_hand


async def serve(bot: FAQBot | FAQService, settings: Settings, stop: asyncio.Event,
                webhook: WebhookOptions | None = None) -> None:
    """Serve Telegram until `stop` is set, then stop cleanly.

    Long polling by default; with `webhook`, Telegram posts updates to `webhook.url` carrying a
    secret generated for this run, and requests without it are refused (403). Pending updates
    are never dropped. The service hears whether Telegram is reachable (for the health check):
    up once the webhook is set or a poll succeeded, down while polls fail. Raises
    ConfigurationError when Telegram refuses the token, at start or at any time later.
    """
    service = FAQService.of(bot)
    service.set_connected("telegram", False)
    application = build_application(service, settings)
    receiver = _WebhookReceiver(application, webhook) if webhook else None
    receiving: asyncio.Task[None] | None = None
    refused = False
    try:
        try:
            await application.initialize()
            await application.start()
            if receiver is not None:
                await receiver.start()
            else:  # getUpdates is refused while a webhook is set
                await application.bot.delete_webhook(drop_pending_updates=False)
            service.set_connected("telegram", True)
            receiving = asyncio.create_task(
                receiver.watch(service) if receiver else _poll(application, service),
                name="telegram-updates")
            await _publish_commands(application, service)
            logger.info("Telegram: serving as @%s", application.bot.username)
            await _until_stopped_or_failed(stop, receiving)
        except InvalidToken:
            refused = True
            raise ConfigurationError("Telegram refused TELEGRAM_BOT_TOKEN (unauthorized)") from None
    finally:
        service.set_connected("telegram", False)
        await _stop(application, receiving, receiver, confirm=not refused)
    logger.info("Telegram: stopped")


async def _until_stopped_or_failed(stop: asyncio.Event, receiving: asyncio.Task[None]) -> None:
    """Wait for `stop`; if receiving updates ends first (a refused token), raise its error."""
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({stopping, receiving}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if receiving.done():
        receiving.result()


async def _poll(application: TelegramApp, service: FAQService) -> None:
    """Long-poll getUpdates into the application's queue until cancelled (the webhook is
    deleted by then).

    Each poll's offset is the first update not finished (`UpdatesInHand`): nothing is
    confirmed before it is finished. Telegram gives back the updates in hand from there on:
    they are skipped. Such a poll is answered at once, so after one that was not full the next
    waits until nothing holds the offset, HELD_POLL_PAUSE at most. A failed poll marks Telegram
    down and is tried again after 1, 2, 4... s (or what flood control asks); a poll that
    succeeds marks it up. A refused token (InvalidToken) ends polling: it is raised.
    """
    bot = application.bot
    in_hand = _in_hand(application)
    failures = 0
    while True:
        offset, limit = await in_hand.window()
        try:
            updates = await bot.get_updates(offset=offset, limit=limit, timeout=POLL_TIMEOUT,
                                            allowed_updates=ALLOWED_UPDATES)
        except InvalidToken:
            raise
        except TelegramError as error:
            failures += 1
            service.set_connected("telegram", False)
            delay = (_retry_after_seconds(error) if isinstance(error, RetryAfter)
                     else min(2.0 ** (failures - 1), MAX_POLL_BACKOFF))
            logger.warning("Telegram getUpdates failed (%s): retry in %.1f s", error, delay)
            await asyncio.sleep(delay)
            continue
        if failures:
            logger.info("Telegram getUpdates works again after %d failures", failures)
        failures = 0
        service.set_connected("telegram", True)
        for update in updates:
            if update.update_id >= in_hand.next_offset and in_hand.take(update.update_id):
                application.update_queue.put_nowait(update)
        if len(updates) < limit:  # Telegram had no more: no need to ask again at once
            await in_hand.caught_up(HELD_POLL_PAUSE)


class _WebhookReceiver:
    """Receives the updates Telegram posts, on an aiohttp server of our own.

    Telegram posts an update again until it is answered 2xx, so each request is answered once
    its update is finished (`UpdatesInHand.settled`): a process killed meanwhile loses nothing,
    and an update answered but not confirmed is answered again by the next process (at least
    once). A request open MAX_HOLD_SECONDS is answered 200 all the same (Telegram keeps at most
    WEBHOOK_CONNECTIONS open, and a chat in long flood control must not hold them all); once the
    stop begins, new requests get 503, and so do those whose update the drain gave up.

    python-telegram-bot's webhook server compares the secret with `!=` (its time depends on how
    much of a guess is right) and logs a wrong secret at DEBUG; this one compares in constant
    time (hmac.compare_digest) and never logs what a request carried.
    """

    def __init__(self, application: TelegramApp, options: WebhookOptions) -> None:
        self.application = application
        self.options = options
        self.secret = secrets.token_urlsafe(32)
        self.accepting = True
        self._runner: web.AppRunner | None = None
        _hide_secrets_in_library_logs(self.secret)

    async def start(self) -> None:
        """Listen, then register the webhook with Telegram."""
        app = web.Application()
        app.router.add_post(urlsplit(self.options.url).path or "/", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.options.listen, self.options.port).start()
        await self.application.bot.set_webhook(self.options.url, secret_token=self.secret,
                                               allowed_updates=ALLOWED_UPDATES,
                                               max_connections=WEBHOOK_CONNECTIONS,
                                               drop_pending_updates=False)

    async def watch(self, service: FAQService) -> None:
        """Check every WEBHOOK_CHECK_SECONDS that the webhook is still set (up while it is);
        until cancelled, or a refused token (raised)."""
        while True:
            await asyncio.sleep(WEBHOOK_CHECK_SECONDS)
            service.set_connected("telegram", await self._still_set(self.application.bot))

    async def _still_set(self, bot: Bot) -> bool:
        try:
            info = await bot.get_webhook_info()
        except InvalidToken:
            raise
        except TelegramError as error:
            logger.warning("Telegram getWebhookInfo failed (%s)", error)
            return False
        if info.url != self.options.url:
            logger.error("Telegram no longer has this run's webhook set")
            return False
        return True

    async def close(self) -> None:
        """Stop listening (Telegram keeps what it could not deliver for the next start)."""
        if self._runner is not None:
            await self._runner.cleanup()

    def genuine(self, request: web.Request) -> bool:
        """Whether the request carries this run's secret (compared in constant time)."""
        given = request.headers.get(SECRET_HEADER, "")
        return hmac.compare_digest(given.encode(), self.secret.encode())

    async def _receive(self, request: web.Request) -> web.Response:
        if not self.genuine(request):
            logger.info("webhook: refused a request without this run's secret")
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            update = None
        if update is None:
            logger.warning("webhook: a request held no update")
            return web.Response(status=400)
        if not self.accepting:  # the stop began: Telegram sends it again to the next start
            return web.Response(status=503)
        in_hand = _in_hand(self.application)
        if in_hand.take(update.update_id):  # not a copy of one in hand (our 2xx was late)
            self.application.update_queue.put_nowait(update)
        handled = await in_hand.settled(update.update_id)
        return web.Response() if handled else web.Response(status=503)


async def _publish_commands(application: TelegramApp, bot: FAQService) -> None:
    """The command menu in French, in English, and by default in the knowledge base's language."""
    for language_code in [*COMMAND_DESCRIPTIONS, None]:
        descriptions = COMMAND_DESCRIPTIONS.get(language_code or bot.language(None),
                                                COMMAND_DESCRIPTIONS["en"])
        commands = [BotCommand(name, descriptions[name]) for name in OUR_COMMANDS]
        try:
            await application.bot.set_my_commands(commands, language_code=language_code)
        except TelegramError as error:  # a missing menu is cosmetic: keep serving
            logger.warning("could not publish the %s commands: %s", language_code or "default",
                           error)


async def _stop(application: TelegramApp, receiving: asyncio.Task[None] | None,
                receiver: _WebhookReceiver | None, *, confirm: bool) -> None:
    """Stop receiving, finish the updates in hand within DRAIN_SECONDS (retries included),
    confirm to Telegram only what was finished, and release every connection, whatever
    failed before."""
    if receiving is not None:
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    if receiver is not None:
        receiver.accepting = False
    try:
        offset = await _drain(application) if application.running else None
        if confirm and receiver is None and offset:
            await _confirm(application.bot, offset)
    finally:
        try:
            if receiver is not None:  # its requests are answered by now
                await receiver.close()
        finally:
            try:
                await application.shutdown()
            finally:
                await application.bot.shutdown()  # a refused start leaves its sessions open


async def _drain(application: TelegramApp) -> int:
    """Let the updates in hand finish, retries included, for DRAIN_SECONDS at most; returns
    the offset that confirms only the updates finished by the deadline (webhook requests of
    those still unfinished are answered 503)."""
    in_hand = _in_hand(application)
    stopping = asyncio.create_task(application.stop())
    done, _ = await asyncio.wait({stopping}, timeout=DRAIN_SECONDS)
    offset = in_hand.offset
    if not done:
        logger.warning("stopping: %d updates unfinished after %.0f s; their retries give up",
                       len(in_hand), DRAIN_SECONDS)
        in_hand.give_up()
        limiter = application.bot.rate_limiter
        if isinstance(limiter, RetryingRateLimiter):
            limiter.stop_waiting()
    await stopping
    return offset


async def _confirm(bot: Bot, offset: int, attempts: int = 4) -> None:
    """Tell Telegram the updates below `offset` are handled: the next start gets the rest."""
    for attempt in range(attempts):
        try:
            await bot.get_updates(offset=offset, limit=1, timeout=0,
                                  allowed_updates=ALLOWED_UPDATES)
            return
        except TelegramError as error:
            logger.warning("could not confirm the updates handled (%s)", error)
            await asyncio.sleep(0.5 * 2 ** attempt)
    logger.warning("updates handled but not confirmed: Telegram will deliver them again")
