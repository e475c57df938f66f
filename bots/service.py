"""FAQService: what the adapters talk to instead of FAQBot, for the operations around it.

It holds the FAQBot being served and can swap it for a new one at any moment (live reload):
each call reads the current bot once, so a reply never mixes two knowledge bases, and the
adapters, which never keep a FAQBot of their own, see the new one from their next call. It also
times each reply, counts it in the metrics and writes it to the question log, with the asker's
ids turned into pseudonyms. It answers exactly as FAQBot does; with no log and no metrics it is
a plain pass-through (which is what an adapter gets when handed a bare FAQBot).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import FAQBot, KnowledgeBase, Reply, Settings, Suggestion
from core.questionlog import NONE_OF_THESE, LoggedQuestion, QuestionLog

if TYPE_CHECKING:  # prometheus-client loads only where metrics are served
    from bots.metrics import Metrics


@dataclass(frozen=True)
class Asker:
    """Who asked, and where: the platform and its raw ids (only pseudonyms are stored)."""

    platform: str
    chat: int | str | None
    user: int | str | None


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
        seconds = time.perf_counter() - started
        if asker is not None:
            self._count(reply, asker)
            self._log(reply, asker, seconds)
            if self.metrics is not None:
                self.metrics.answer_seconds.observe(seconds)
        return reply

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

    # -- plain engine calls -------------------------------------------------------------------

    def reply_for(self, intent_id: str, lang: str | None = None) -> Reply:
        """FAQBot.reply_for (previews such as inline results: not a reply sent)."""
        return self._bot.reply_for(intent_id, lang)

    def topics(self, lang: str | None = None) -> list[Suggestion]:
        """FAQBot.topics."""
        return self._bot.topics(lang)

    def suggest(self, text: str, lang: str | None = None, limit: int = 25) -> list[Suggestion]:
        """FAQBot.suggest."""
        return self._bot.suggest(text, lang, limit)

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

    def _log(self, reply: Reply, asker: Asker, seconds: float) -> None:
        if self.log is None:
            return
        entry = LoggedQuestion(
            at=datetime.now(UTC), platform=asker.platform,
            chat="", user="",  # the log puts the pseudonyms of the ids here
            lang=reply.lang, question=reply.question if self.log_text else None,
            kind=reply.kind, intent=reply.intent, confidence=reply.confidence,
            suggestions=tuple(s.intent for s in reply.suggestions), latency_ms=seconds * 1000)
        self.log.record(entry, asker.chat, asker.user)

    def _log_choice(self, asker: Asker, choice: str) -> None:
        if self.log is None:
            return
        self.log.record_choice(asker.platform, asker.chat, asker.user, choice, datetime.now(UTC))


# A platform adapter's `serve`, as `faqbot run` starts it: serves until the event is set.
Server = Callable[[FAQService, Settings, asyncio.Event], Coroutine[Any, Any, None]]
