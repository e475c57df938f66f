"""What the reliability tests share: the figures they report, the log scanner, and the plumbing
that runs the real adapters against the fakes and accounts for every message.

Every test reports a `Figures` line; the suite's conftest prints them all at the end of the run
(whatever pytest's output capture), so a CI log shows them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bots.frontdoor.replies import layout
from bots.service import FAQService
from bots.telegram.config import WebhookOptions
from bots.telegram.replying import render
from core import FAQBot
from tests.auxil.discord import TOKEN as DISCORD_TOKEN
from tests.auxil.telegram import group_chat, message_update, serving, user
from tests.fakes.discord_api import FakeDiscord, PushedInteraction, RecordedCall
from tests.fakes.discord_api import Fault as DiscordFault
from tests.fakes.telegram_api import BOT_USERNAME, Call, FakeTelegramAPI, Fault

TELEGRAM_TOKEN = "123456789:AAReliabilitySuiteFakeToken-0123456789"
# The webhook secret is generated at run time; the suite fixes it so that the log scan can
# look for it from the first line on.
WEBHOOK_SECRET = "reliability-suite-webhook-secret-0123456789abcdef"
SECRETS = (TELEGRAM_TOKEN, DISCORD_TOKEN, WEBHOOK_SECRET)
SEED = 20_240_801
FaultT = TypeVar("FaultT")
ItemT = TypeVar("ItemT")


# ---------------------------------------------------------------------------------------------
# Figures


@dataclass
class Figures:
    """One test's figures, printed in the suite's summary at the end of the run."""

    test: str
    sent: int = 0  # messages, interactions or inputs the bot was given
    answered: int = 0  # of those, answered at least once
    lost: int = 0  # never answered
    twice: int = 0  # answered more than once
    faults: int = 0  # faults injected
    survived: int = 0  # faults after which the call still went through
    bad_inputs: int = 0  # hostile inputs tried
    refused: int = 0  # deliberately left unanswered (allow-lists, webhook secret)
    seconds: float = 0.0  # wall time, measured for the record (never asserted)

    def line(self) -> str:
        """The summary line."""
        return (f"{self.test}: sent {self.sent}, answered {self.answered}, lost {self.lost}, "
                f"answered twice {self.twice}, faults injected {self.faults}, "
                f"survived {self.survived}, bad inputs {self.bad_inputs}, "
                f"refused {self.refused}" + (f" ({self.seconds:.1f} s)" if self.seconds else ""))


REPORTED: list[Figures] = []


def report(figures: Figures) -> None:
    """Add a test's figures to the summary."""
    REPORTED.append(figures)


# ---------------------------------------------------------------------------------------------
# Logs: no secret anywhere, no raw control character from users


# Characters that must never reach a log line raw: they hide or reorder text (zero-width and
# bidirectional controls), break terminals and encoders (NUL, escape, lone surrogates) or split
# lines where no one expects it (U+2028, U+2029). Plain line feeds and tabs are left out: the
# libraries write multi-line messages of their own; the hostile-input tests look for a line
# forged by a user instead (FORGED_LINE).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
FORGED_LINE = "\nCRITICAL faqbot: forged log line"


def _unsafe_pattern() -> re.Pattern[str]:
    """One character class for every code point of those categories (searched in C: the
    scanner reads tens of thousands of lines)."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if chr(code) not in "\n\t" and unicodedata.category(chr(code)) in _UNSAFE_CATEGORIES:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return re.compile("[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges) + "]")


UNSAFE = _unsafe_pattern()


class LogScanner(logging.Handler):
    """Reads every log record of the suite: counts lines, keeps those holding a secret, and
    those whose message carries a raw control character."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.secrets = tuple(secrets)
        self.lines = 0
        self.leaks: list[str] = []
        self.unescaped: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if UNSAFE.search(message) or FORGED_LINE in message:
            characters = sorted({hex(ord(char)) for char in UNSAFE.findall(message)})
            self.unescaped.append(f"{record.name}: {characters}")
        traceback = ""
        if record.exc_info:
            traceback = record.exc_text or logging.Formatter().formatException(record.exc_info)
        self.scan(f"{message}\n{traceback}" if traceback else message, record.name)

    def scan(self, text: str, source: str) -> None:
        """Scan lines logged elsewhere (a subprocess's standard error) for secrets."""
        self.lines += text.count("\n") + 1
        if any(secret in text for secret in self.secrets):
            self.leaks.append(f"a line from {source}")


# ---------------------------------------------------------------------------------------------
# Streams: many users writing at once


def interleave(queues: list[list[ItemT]], seed: int) -> list[ItemT]:
    """The items of all queues in one stream, queues picked at random (seeded) and each queue's
    items kept in their own order: users writing at the same time, each in turn."""
    order = random.Random(seed)
    stream = []
    while queues:
        queue = order.choice(queues)
        stream.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return stream


# ---------------------------------------------------------------------------------------------
# Ledgers: every message or interaction pushed, and the replies it got


STALL_SECONDS = 60.0


async def settle(wait_until: Callable[..., Awaitable[None]], done: Callable[[], bool],
                 progress: Callable[[], int]) -> None:
    """Wait until `done()`, or until `progress()` stood still for STALL_SECONDS: a test
    waiting for something lost fails in a minute, with its figures, not at its timeout."""
    def moved(seen: int) -> Callable[[], bool]:
        return lambda: done() or progress() != seen

    while not done():
        try:
            await wait_until(moved(progress()), timeout=STALL_SECONDS)
        except TimeoutError:
            return


KeyT = TypeVar("KeyT")
CallT = TypeVar("CallT")


class Ledger(Generic[KeyT, CallT]):
    """What the Telegram and Discord ledgers count alike, from what their `read` gathered:
    whether any expected reply is still awaited, and how many were answered, lost or answered
    twice. Not a dataclass itself: the subclasses' fields keep their own order and defaults."""

    expected: Mapping[KeyT, object]
    deliveries: dict[KeyT, list[CallT]]
    _waiting: set[KeyT]

    def read(self) -> None:
        """Account for the calls the fake received since the last read."""
        raise NotImplementedError

    def _wait_until(self, condition: Callable[[], bool], timeout: float) -> Awaitable[None]:
        """The fake's `wait_until`."""
        raise NotImplementedError

    def all_answered(self) -> bool:
        """True once no expected reply is awaited any more."""
        self.read()
        return not self._waiting

    async def settle(self) -> None:
        """Wait until no expected reply is awaited any more, or until no new one came for a
        while (the test's figures and assertions then show what was lost)."""
        await settle(self._wait_until, self.all_answered, lambda: len(self._waiting))

    def counts(self) -> tuple[int, int, int]:
        """(answered, lost, answered twice)."""
        self.read()
        answered = sum(1 for key in self.expected if self.deliveries.get(key))
        twice = sum(1 for key in self.expected if len(self.deliveries.get(key, ())) > 1)
        return answered, len(self.expected) - answered, twice


# ---------------------------------------------------------------------------------------------
# Telegram


# The suite's own token (one of the SECRETS the log scan looks for), and the per-user rate
# limit raised out of the way: these tests send far more than five messages per user in ten
# seconds on purpose.
_TELEGRAM_SETTINGS: dict[str, Any] = {"telegram_bot_token": TELEGRAM_TOKEN,
                                      "rate_limit_messages": 100_000}


def telegram_serving(api: FakeTelegramAPI, faq: FAQBot | FAQService,
                     webhook: WebhookOptions | None = None,
                     **overrides: Any) -> AbstractAsyncContextManager[asyncio.Event]:
    """`tests.auxil.telegram.serving` with the suite's settings, and a minute (not the unit tests'
    seconds) to start and to stop: the suite keeps a small machine busy."""
    return serving(api, faq, webhook, ready_timeout=60, stop_timeout=60,
                   **(_TELEGRAM_SETTINGS | overrides))


Key = tuple[int, str, int | None]  # chat, text, quoted message id


@dataclass
class TelegramLedger(Ledger[Key, Call]):
    """What the bot should send for each message pushed, and what the fake saw it send.

    Each message expects one reply, identified by its chat, its text and the message it quotes
    (groups quote the question; private chats do not, so their tests give every question of a
    chat a different answer). The fake's calls are read incrementally: checking after every
    call stays cheap with ten thousand messages.
    """

    api: FakeTelegramAPI
    expected: dict[Key, int] = field(default_factory=dict)  # key -> position in its chat
    order: dict[int, list[Key]] = field(default_factory=lambda: defaultdict(list))
    deliveries: dict[Key, list[Call]] = field(default_factory=lambda: defaultdict(list))
    unexpected: list[Call] = field(default_factory=list)
    sent_order: dict[int, list[Key]] = field(default_factory=lambda: defaultdict(list))
    _read: int = 0
    _waiting: set[Key] = field(default_factory=set)

    def expect(self, chat: int, text: str, quote: int | None = None) -> None:
        """One more message in `chat` whose reply is `text` (quoting `quote` in a group)."""
        key = (chat, text, quote)
        assert key not in self.expected, f"two messages of chat {chat} expect the same reply"
        self.expected[key] = len(self.order[chat])
        self.order[chat].append(key)
        self._waiting.add(key)

    def read(self) -> None:
        """Account for the calls made since the last read."""
        calls = self.api.calls
        for call in calls[self._read:]:
            if call.method != "sendMessage" or call.status != 200:
                continue
            quoted = (call.params.get("reply_parameters") or {}).get("message_id")
            key = (call.params["chat_id"], call.params["text"], quoted)
            if key not in self.expected:
                self.unexpected.append(call)
                continue
            self.deliveries[key].append(call)
            self.sent_order[key[0]].append(key)
            self._waiting.discard(key)
        self._read = len(calls)

    def _wait_until(self, condition: Callable[[], bool], timeout: float) -> Awaitable[None]:
        return self.api.wait_until(condition, timeout)

    def out_of_order_chats(self) -> list[int]:
        """Chats whose replies did not come in the order asked, judged by the first copy of
        each reply (a second copy, see `confirmed_twice`, may come later)."""
        self.read()
        wrong = []
        for chat, expected in self.order.items():
            firsts = list(dict.fromkeys(self.sent_order[chat]))
            if firsts != expected:
                wrong.append(chat)
        return wrong

    def confirmed_twice(self) -> list[Key]:
        """Replies the bot sent again although it had been told a copy arrived.

        Sending again is right only when the bot never heard back (a timeout, a dropped
        connection); the fake marks each copy that took effect without the bot hearing so. Any
        number of those may arrive, but at most one copy may have been confirmed.
        """
        self.read()
        return [key for key, calls in self.deliveries.items()
                if sum(not call.client_gone for call in calls) > 1]


GROUP_SIZE = 5  # users per group chat in a stream


@dataclass(frozen=True)
class Asked:
    """One message of the stream: the update to push, and the reply it must get."""

    update: dict[str, Any]
    chat: int
    reply: str
    quote: int | None


def _distinct_questions(bot: FAQBot, needed: int) -> list[str]:
    """The knowledge base's own questions whose replies all differ, so that in a private chat
    (no quote) a reply names the question it answers."""
    seen: set[str] = set()
    chosen = []
    for intent in bot.kb.intents:
        for question in intent.question.values():
            pieces = render(layout(bot.answer(question))).pieces
            if len(pieces) == 1 and pieces[0] not in seen:
                seen.add(pieces[0])
                chosen.append(question)
    assert len(chosen) >= needed, "the knowledge base is too small for this test"
    return chosen


def build_stream(bot: FAQBot, users: int, private_users: int, seed: int, *,
                 first_user: int = 100_000, messages_per_user: int = 20) -> list[Asked]:
    """`messages_per_user` messages per user, users interleaved at random (seeded), each
    user's messages in their own order. Groups mention the bot; private chats need not."""
    questions = _distinct_questions(bot, messages_per_user)
    replies: dict[tuple[str, str], str] = {}
    queues: list[list[Asked]] = []
    for index in range(users):
        uid = first_user + index
        lang = "fr" if index % 2 else "en"
        sender = user(uid, lang)
        chat = None if index < private_users else group_chat(-1_000_000 - index // GROUP_SIZE)
        queue = []
        for turn in range(messages_per_user):
            question = questions[(index + turn) % len(questions)]
            text = question if chat is None else f"@{BOT_USERNAME} {question}"
            update = message_update(text, sender=sender, chat=chat)
            if (question, lang) not in replies:
                replies[question, lang] = render(layout(
                    bot.answer(question, lang_hint=lang))).pieces[0]
            reply = replies[question, lang]
            message = update["message"]
            queue.append(Asked(update, message["chat"]["id"], reply,
                               None if chat is None else message["message_id"]))
        queues.append(queue)
    return interleave(queues, seed)


def expect_all(ledger: TelegramLedger, stream: list[Asked]) -> None:
    """The ledger expects the reply of every message of `stream`."""
    for asked in stream:
        ledger.expect(asked.chat, asked.reply, asked.quote)



class Chaos:
    """Seeded random faults for the fakes' `fault_picker`s.

    Whether a call fails, and how, depends only on the seed, the call's identity (what it
    sends: a message, a poll, an interaction's answer) and how many times the same call came
    before: not on the order calls arrive in, which timing decides. So a run is reproducible.
    One call meets at most `cap` faults, fewer than the adapters' retry budgets: every fault can
    be survived, and a loss is the adapter's doing, not bad luck.
    """

    def __init__(self, rate: float, seed: int = SEED, cap: int = 2) -> None:
        self.rate = rate
        self.seed = seed
        self.cap = cap
        self.calls = 0
        self.injected: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self._faulted: Counter[str] = Counter()

    def draw(self, identity: str, faults: list[tuple[str, FaultT]]) -> FaultT | None:
        """The fault for this attempt of the call named `identity`, or None."""
        attempt = self._attempts[identity]
        self._attempts[identity] += 1
        luck = random.Random(f"{self.seed}/{identity}/{attempt}")
        if luck.random() >= self.rate or self._faulted[identity] >= self.cap:
            return None
        self._faulted[identity] += 1
        name, fault = luck.choice(faults)
        self.injected[name] += 1
        return fault

    @property
    def total(self) -> int:
        """Faults injected so far."""
        return sum(self.injected.values())


class TelegramChaos(Chaos):
    """Faults for the fake Bot API, on `rate` of all its calls, chosen among those listed for
    the call's method."""

    def __init__(self, faults: dict[str, list[tuple[str, Fault]]], rate: float) -> None:
        super().__init__(rate)
        self.faults = faults
        self.hit: list[tuple[str, dict[str, Any]]] = []  # (method, params) of each fault

    def __call__(self, method: str, params: dict[str, Any]) -> Fault | None:
        self.calls += 1
        if method not in self.faults:
            return None
        quoted = (params.get("reply_parameters") or {}).get("message_id")
        identity = (f"{method}/{params.get('chat_id')}/{params.get('text')}/{quoted}/"
                    f"{params.get('offset')}")
        fault = self.draw(identity, self.faults[method])
        if fault is not None:
            self.hit.append((method, params))
        return fault


# ---------------------------------------------------------------------------------------------
# Discord


def discord_text(message: dict[str, Any]) -> str:
    """The text a user reads first in a message the bot sent: its embed's, else its content."""
    embeds = message.get("embeds") or []
    return str(embeds[0].get("description", "")) if embeds else str(message.get("content") or "")


Conversation = tuple[int, int]  # channel, user


@dataclass
class DiscordLedger(Ledger[str, RecordedCall]):
    """Each interaction pushed, the reply it must get, and the callbacks the fake received.

    An interaction is identified by its callback URL; the fake's calls are read incrementally.
    Order is judged per conversation, one user in one channel: each answer is attached to its
    own command, and different users' commands are answered independently.
    """

    fake: FakeDiscord
    expected: dict[str, tuple[Conversation, str]] = field(default_factory=dict)  # by path
    order: dict[Conversation, list[str]] = field(default_factory=lambda: defaultdict(list))
    deliveries: dict[str, list[RecordedCall]] = field(default_factory=lambda: defaultdict(list))
    sent_order: dict[Conversation, list[str]] = field(
        default_factory=lambda: defaultdict(list))
    wrong_text: list[str] = field(default_factory=list)
    unexpected: list[RecordedCall] = field(default_factory=list)
    _read: int = 0
    _waiting: set[str] = field(default_factory=set)

    def expect(self, interaction: PushedInteraction, text: str) -> None:
        """`interaction` must be answered once, with `text`."""
        payload = interaction.payload
        user = (payload.get("member") or payload)["user"]["id"]
        conversation = (int(payload["channel_id"]), int(user))
        self.expected[interaction.callback_path] = (conversation, text)
        self.order[conversation].append(interaction.callback_path)
        self._waiting.add(interaction.callback_path)

    def read(self) -> None:
        """Account for the calls made since the last read."""
        calls = self.fake.calls
        for call in calls[self._read:]:
            if call.status == 0 or call.status >= 300 or call.method != "POST":
                continue
            if call.path not in self.expected:
                if call.path.startswith(("/webhooks/", "/channels/")):
                    self.unexpected.append(call)
                continue
            conversation, text = self.expected[call.path]
            self._waiting.discard(call.path)  # answered, rightly or not: nothing else will come
            if discord_text(call.body.get("data") or {}) != text:
                self.wrong_text.append(call.path)  # e.g. an error notice: the answer is lost
                continue
            self.deliveries[call.path].append(call)
            self.sent_order[conversation].append(call.path)
        self._read = len(calls)

    def _wait_until(self, condition: Callable[[], bool], timeout: float) -> Awaitable[None]:
        return self.fake.wait_until(condition, timeout)

    def out_of_order(self) -> list[Conversation]:
        """Conversations whose answers were not accepted in the order the interactions came."""
        self.read()
        return [conversation for conversation, expected in self.order.items()
                if list(dict.fromkeys(self.sent_order[conversation])) != expected]


class DiscordChaos(Chaos):
    """Faults for the fake Discord REST API, on `rate` of the posts (the calls that carry a
    message). A post is named after the interaction it answers: its user and what they asked."""

    def __init__(self, fake: FakeDiscord, faults: list[tuple[str, DiscordFault]],
                 rate: float) -> None:
        super().__init__(rate)
        self.fake = fake
        self.faults = faults
        self.hit: list[str] = []  # the path of each call a fault was injected into

    def __call__(self, call: RecordedCall) -> DiscordFault | None:
        if call.method != "POST":
            return None
        self.calls += 1
        fault = self.draw(self._identity(call), self.faults)
        if fault is not None:
            self.hit.append(call.path)
        return fault

    def _identity(self, call: RecordedCall) -> str:
        # /interactions/{id}/{token}/callback and /webhooks/{application}/{token}: the token
        # (random in each run) leads to the interaction, named by who asked what.
        parts = call.path.split("/")
        interaction = self.fake.interactions.get(parts[3]) if len(parts) > 3 else None
        if interaction is None:
            return call.path
        payload = interaction.payload
        data = payload["data"]
        asked = data.get("custom_id") or json.dumps(data.get("options"), ensure_ascii=False)
        return f"{parts[1]}/{(payload.get('member') or payload)['user']['id']}/{asked}"
