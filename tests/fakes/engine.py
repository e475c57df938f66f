"""Bots that misbehave on purpose: they fail, take their time, or see a reload land meanwhile."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from core import FAQBot
from core.bot import RankedReply

if TYPE_CHECKING:
    from bots.service import FAQService

SLOW = 0.05  # seconds the slow bot spends on each classification


class FailingBot(FAQBot):
    """Raises on a platform message that says "boom", as a bug in the engine would."""

    def answer_ranked_many(self, texts: Sequence[str], lang: str | None = None, *,
                           lang_hints: Sequence[str | None] | None = None) -> list[RankedReply]:
        if any("boom" in text for text in texts):
            raise RuntimeError("engine exploded")
        return super().answer_ranked_many(texts, lang, lang_hints=lang_hints)


class SlowBot(FAQBot):
    """Takes SLOW seconds to classify, so that the time measured around it shows."""

    def answer_ranked(self, text: str, lang: str | None = None, *,
                      lang_hint: str | None = None) -> RankedReply:
        time.sleep(SLOW)
        return super().answer_ranked(text, lang, lang_hint=lang_hint)

    def answer_ranked_many(self, texts: Sequence[str], lang: str | None = None, *,
                           lang_hints: Sequence[str | None] | None = None) -> list[RankedReply]:
        time.sleep(SLOW)
        return super().answer_ranked_many(texts, lang, lang_hints=lang_hints)


class ReloadedWhileAnswering(FAQBot):
    """A reload lands while it classifies: the service is told to serve `successor` mid-call."""

    service: FAQService
    successor: FAQBot

    def answer_ranked_many(self, texts: Sequence[str], lang: str | None = None, *,
                           lang_hints: Sequence[str | None] | None = None) -> list[RankedReply]:
        self.service.swap(self.successor)
        return super().answer_ranked_many(texts, lang, lang_hints=lang_hints)
