"""FAQService: what the adapters talk to instead of FAQBot, for the operations around it.

It holds the FAQBot being served and can swap it for a new one at any moment (live reload):
each call reads the current bot once, so a reply never mixes two knowledge bases, and the
adapters, which never keep a FAQBot of their own, see the new one from their next call. It also
times each reply, counts it in the metrics and writes it to the question log, with the asker's
ids turned into pseudonyms; it gives each curated answer the payload of its feedback buttons
and records the clicks (bots/feedback.py). It answers exactly as FAQBot does; with no log and
no metrics it is a plain pass-through (which is what an adapter gets when handed a bare FAQBot).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bots.feedback import NONE_CHOSEN, AlternativesCodec, FeedbackClick, FeedbackTicket
from core import FAQBot, KnowledgeBase, Reply, Settings, Suggestion
from core.bot import RankedReply
from core.questionlog.interface import (
    HELPFUL,
    NONE_OF_THESE,
    NOT_HELPFUL,
    Feedback,
    LoggedQuestion,
    QuestionLog,
)

if TYPE_CHECKING:  # prometheus-client loads only where metrics are served
    from bots.metrics import Metrics


@dataclass(frozen=True)
class Asker:
    """Who asked, and where: the platform and its raw ids (only pseudonyms are stored)."""

    platform: str
    chat: int | str | None
    user: int | str | None
    # The platform's id of what was asked in that chat (a Telegram message, a Discord message
    # or interaction): the same in every process, so a question answered again is logged once.
    update: int | str | None = None


@dataclass(frozen=True)
class Asked:
    """A platform message to answer: its text, the asker's locale and who asked."""

    text: str
    lang_hint: str | None
    asker: Asker


# Feedback clicks remembered to tell a repeated click (which changes nothing) from a first one.
REMEMBERED_CLICKS = 65_536


class FAQService:
    """The current FAQBot, with timing, metrics and the question log around each reply.

    `log` must never raise nor block (BackgroundQuestionLog): it is written on the reply path.
    """

    def __init__(self, bot: FAQBot, *, log: QuestionLog | None = None,
                 metrics: Metrics | None = None, log_text: bool = True) -> None:
        self._bot = bot
        self.log = log
        self.metrics = metrics
        self.log_text = log_text
        self._clicked: dict[tuple[str, str, str, bool], None] = {}
        self._codec = AlternativesCodec(bot.kb)
        if metrics is not None:
            metrics.serving(bot)

    @classmethod
    def of(cls, faq: FAQBot | FAQService) -> FAQService:
        """`faq` itself if it is a service, else a plain service around that bot."""
        return faq if isinstance(faq, FAQService) else cls(faq)

    @property
    def bot(self) -> FAQBot:
        """The FAQBot answering now."""
        return self._bot

    @property
    def kb(self) -> KnowledgeBase:
        """The knowledge base answering now."""
        return self._bot.kb

    def swap(self, bot: FAQBot) -> None:
        """Serve `bot` from the next call on (one assignment: atomic for every caller)."""
        self._bot = bot
        if self.metrics is not None:
            self.metrics.serving(bot)

    # -- replies that are recorded ----------------------------------------------------------

    def answer(self, text: str, lang: str | None = None, *, lang_hint: str | None = None,
               asker: Asker | None = None) -> Reply:
        """FAQBot.answer, timed, counted and logged when `asker` is given."""
        started = time.perf_counter()
        reply = self._bot.answer(text, lang, lang_hint=lang_hint)
        if asker is not None:
            self._record(reply, asker, time.perf_counter() - started, ref=None)
        return reply

    def answer_many_with_feedback(self, questions: Sequence[Asked], *, feedback: bool = True
                                  ) -> list[tuple[Reply, FeedbackTicket | None]]:
        """`answer` for platform messages, recorded, ranked in one batch (see
        FAQBot.answer_ranked_many); each is recorded with the batch's time, which it waited. A
        curated answer also gets the ticket its feedback buttons carry, unless `feedback` is
        off here or in the knowledge base."""
        bot = self._bot  # one bot for the replies and their tickets, even during a reload
        started = time.perf_counter()
        ranked = bot.answer_ranked_many([question.text for question in questions],
                                        lang_hints=[question.lang_hint for question in questions])
        seconds = time.perf_counter() - started
        return [self._ticketed(bot, question.asker, answer, seconds=seconds, feedback=feedback)
                for question, answer in zip(questions, ranked, strict=True)]

    def _ticketed(self, bot: FAQBot, asker: Asker, answer: RankedReply, *, seconds: float,
                  feedback: bool) -> tuple[Reply, FeedbackTicket | None]:
        """The reply recorded, with its feedback ticket when it is a curated answer."""
        reply, alternatives = answer
        ref, ticket = update_ref(asker), None
        if feedback and bot.kb.feedback and reply.kind == "answer":
            ref = ref or secrets.token_urlsafe(6)
            ticket = FeedbackTicket(ref=ref, asker=self.asker_tag(ref, asker), lang=reply.lang,
                                    alternatives=self._codec_for(bot.kb).encode(alternatives))
        self._record(reply, asker, seconds, ref=ref)
        return reply, ticket

    def choose(self, intent_id: str, lang: str | None = None, *,
               asker: Asker | None = None) -> Reply:
        """The reply to a button or menu naming an intent; recorded as the answer to the
        asker's open clarification when it offered that intent. Raises UnknownIntentError."""
        reply = self._bot.reply_for(intent_id, lang)
        if asker is not None:
            self._count(reply, asker)
            self._log_choice(asker, intent_id)
        return reply

    def none_of_these(self, lang: str | None = None, *, asker: Asker | None = None) -> Reply:
        """The reply to "none of these" under a clarification: the fallback, recorded."""
        reply = self._bot.fallback(lang)
        if asker is not None:
            self._count(reply, asker)
            self._log_choice(asker, NONE_OF_THESE)
        return reply

    # -- feedback ------------------------------------------------------------------------------

    @staticmethod
    def asker_tag(ref: str, asker: Asker) -> str:
        """The short hash of a user id that the feedback payloads of question `ref` carry, to
        tell the asker's clicks from others'. Salted with the question's random reference: it
        needs no key (buttons keep working after a restart), and the tags of one person differ
        from question to question. Whoever sees the buttons can see who asked anyway."""
        text = f"{ref}:{asker.platform}:{asker.user}"
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def record_feedback(self, click: FeedbackClick, asker: Asker) -> bool:
        """Record a feedback click of `asker`, counted and logged; False for a repeat (the
        same user's second verdict, or second choice, on one answer), which changes nothing."""
        key = (asker.platform, click.ref, str(asker.user), click.action == "c")
        if key in self._clicked:
            return False
        self._clicked[key] = None
        if len(self._clicked) > REMEMBERED_CLICKS:
            del self._clicked[next(iter(self._clicked))]
        verdict = HELPFUL if click.action == "y" else NOT_HELPFUL
        if self.metrics is not None and click.action != "c":
            self.metrics.feedback.labels(asker.platform, verdict).inc()
        if self.log is not None:
            choice = None if click.action != "c" else (
                NONE_OF_THESE if click.rest == NONE_CHOSEN else click.rest)
            # The log puts the pseudonym of the user id in `user`.
            self.log.record_feedback(asker.platform, asker.chat, asker.user, click.ref,
                                     Feedback(datetime.now(UTC), "", verdict, choice))
        return True

    def alternatives(self, click: FeedbackClick) -> list[Suggestion]:
        """The topics a "not helpful" click offers instead ([] if the knowledge base changed
        since the answer was sent)."""
        kb, lang = self.kb, self.language(click.lang)
        found = (kb.intent(intent_id) for intent_id in self._codec_for(kb).decode(click.rest))
        return [Suggestion(intent=intent.id, question=intent.question[lang])
                for intent in found if intent is not None]

    def choose_instead(self, click: FeedbackClick, asker: Asker) -> Reply:
        """The reply to a topic chosen after "not helpful" (the fallback for "none of these"),
        recorded with the feedback. Raises UnknownIntentError."""
        if click.rest == NONE_CHOSEN:
            reply = self._bot.fallback(click.lang)
        else:
            reply = self._bot.reply_for(click.rest, click.lang)
        self._count(reply, asker)
        self.record_feedback(click, asker)
        return reply

    # -- plain engine calls -------------------------------------------------------------------

    def reply_for(self, intent_id: str, lang: str | None = None) -> Reply:
        """FAQBot.reply_for (previews such as inline results: not a reply sent)."""
        return self._bot.reply_for(intent_id, lang)

    def topics(self, lang: str | None = None) -> list[Suggestion]:
        """FAQBot.topics."""
        return self._bot.topics(lang)

    def suggest(self, text: str, lang: str | None = None, limit: int = 25, *,
                lang_hint: str | None = None) -> list[Suggestion]:
        """FAQBot.suggest."""
        return self._bot.suggest(text, lang, limit, lang_hint=lang_hint)

    def language(self, lang: str | None) -> str:
        """FAQBot.language."""
        return self._bot.language(lang)

    # -- operations ------------------------------------------------------------------------------

    def set_connected(self, platform: str, connected: bool) -> None:
        """An adapter reports its platform connection up or down (for /healthz)."""
        if self.metrics is not None:
            self.metrics.set_connected(platform, connected)

    def count_refusal(self, platform: str) -> None:
        """An adapter refused a message or interaction from outside its allow-list."""
        if self.metrics is not None:
            self.metrics.refusals.labels(platform).inc()

    def count_dropped(self, platform: str) -> None:
        """An adapter dropped a message unanswered: its chat already had too many waiting."""
        if self.metrics is not None:
            self.metrics.dropped.labels(platform).inc()

    def _count(self, reply: Reply, asker: Asker) -> None:
        if self.metrics is not None:
            self.metrics.replies.labels(asker.platform, reply.kind).inc()

    def _record(self, reply: Reply, asker: Asker, seconds: float, ref: str | None) -> None:
        self._count(reply, asker)
        self._log(reply, asker, seconds, ref)
        if self.metrics is not None:
            self.metrics.answer_seconds.observe(seconds)

    def _codec_for(self, kb: KnowledgeBase) -> AlternativesCodec:
        # Built once per knowledge base (a reload brings a new one).
        if self._codec.kb is not kb:
            self._codec = AlternativesCodec(kb)
        return self._codec

    def _log(self, reply: Reply, asker: Asker, seconds: float, ref: str | None) -> None:
        if self.log is None:
            return
        entry = LoggedQuestion(
            at=datetime.now(UTC), platform=asker.platform,
            chat="", user="",  # the log puts the pseudonyms of the ids here
            lang=reply.lang, question=reply.question if self.log_text else None,
            kind=reply.kind, intent=reply.intent, confidence=reply.confidence,
            suggestions=tuple(s.intent for s in reply.suggestions), latency_ms=seconds * 1000,
            ref=ref)
        self.log.record(entry, asker.chat, asker.user)

    def _log_choice(self, asker: Asker, choice: str) -> None:
        if self.log is None:
            return
        self.log.record_choice(asker.platform, asker.chat, asker.user, choice, datetime.now(UTC))


def update_ref(asker: Asker) -> str | None:
    """The reference of the question of `asker.update` (None without one): 8 characters of its
    hash, like the random reference of a feedback ticket, and the same in every process."""
    if asker.update is None:
        return None
    digest = hashlib.sha256(f"{asker.platform}:{asker.update}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:6]).decode()


# A platform adapter's `serve`, as `faqbot run` starts it: serves until the event is set.
Server = Callable[[FAQService, Settings, asyncio.Event], Coroutine[Any, Any, None]]
