"""FAQBot turns any text into a Reply: a curated answer, a clarification, smalltalk or fallback.

It decides everything about meaning, so every front door (Telegram, Discord, console, library)
only renders what it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from core.cache import default_cache_dir, new_classifier, trained_classifier
from core.classifier import IntentClassifier, Prediction
from core.errors import UnknownIntentError
from core.knowledge import Intent, KnowledgeBase, load_knowledge_base
from core.text import Question, question_language
from intents import DEFAULT_KB_PATH

logger = logging.getLogger(__name__)

# Also the order in which the curators' reports list them (core.stats.KINDS).
ReplyKind = Literal["answer", "clarify", "fallback", "smalltalk"]
MAX_CLARIFY_CHOICES = 3
# The other topics offered to a user who found an answer unhelpful.
MAX_ALTERNATIVES = 3

_CLARIFY_PROMPT = {
    "fr": "Je ne suis pas sûr d'avoir compris. Vouliez-vous dire :",
    "en": "I am not sure I understood. Did you mean:",
}


class Suggestion(BaseModel):
    """An intent offered to the user: its id (for buttons) and its question (for display)."""

    model_config = ConfigDict(frozen=True)

    intent: str
    question: str


class Reply(BaseModel):
    """What the bot says to one message; the `faqbot ask --json` line has exactly these keys."""

    model_config = ConfigDict(frozen=True)

    question: str
    kind: ReplyKind
    intent: str | None = Field(description="the intent whose answer is shown")
    confidence: float = Field(ge=0.0, le=1.0)
    lang: str
    answer: str = Field(description="the text a user sees")
    suggestions: list[Suggestion] = Field(default_factory=list)


class RankedReply(NamedTuple):
    """A reply and, for a curated answer, the FAQ intents ranked next for its question, best
    first: what a user who found the answer unhelpful may have meant instead."""

    reply: Reply
    alternatives: list[str]


class FAQBot:
    """The engine: a validated knowledge base and the classifier trained on it."""

    def __init__(self, kb: KnowledgeBase, classifier: IntentClassifier | None = None) -> None:
        self.kb = kb
        self.classifier = classifier or new_classifier(kb).fit(*kb.training_data())
        self._intents = {intent.id: intent for intent in kb.intents}
        # Suggestions are immutable, so each is built once and shared by every reply (a Reply
        # copies the list it is given).
        self._suggestions = {
            lang: {intent.id: Suggestion(intent=intent.id, question=intent.question[lang])
                   for intent in kb.intents}
            for lang in kb.languages}
        self._topics = {lang: [self._suggestions[lang][intent.id] for intent in kb.faq_intents]
                        for lang in kb.languages}

    @classmethod
    def from_path(cls, path: Path | str, *, cache: bool = True) -> FAQBot:
        """Load and validate a knowledge-base file (KnowledgeBaseError if invalid), then train.

        With `cache`, a model trained earlier on the same content is reused (see core.cache).
        """
        kb = load_knowledge_base(Path(path))
        return cls(kb, trained_classifier(kb, default_cache_dir() if cache else None))

    @classmethod
    def default(cls) -> FAQBot:
        """The bot on the shipped knowledge base (the Armed Forces / Mistral AI agreement)."""
        return cls.from_path(DEFAULT_KB_PATH)

    def answer(self, text: str, lang: str | None = None, *, lang_hint: str | None = None) -> Reply:
        """Reply to any text; never raises.

        The reply language is `lang` if given, else the language the text is written in, else
        `lang_hint` (a user's platform locale), else the knowledge base's default.
        """
        return self.answer_ranked(text, lang, lang_hint=lang_hint).reply

    def answer_ranked(self, text: str, lang: str | None = None, *,
                      lang_hint: str | None = None) -> RankedReply:
        """`answer`, with the next FAQ intents of the ranking when the reply is an answer
        (from the same classification: no second one)."""
        question, reply_lang = self._read(text, lang, lang_hint)
        if not question.normalized:
            return RankedReply(self.fallback(reply_lang, question.text), [])
        return self._ranked(question, reply_lang, self.classifier.predict_question(question))

    def answer_ranked_many(self, texts: Sequence[str], lang: str | None = None, *,
                           lang_hints: Sequence[str | None] | None = None) -> list[RankedReply]:
        """`answer_ranked` for each text (with its own `lang_hints` entry), in order. The
        classifier ranks them in one batch: the sentence encoder runs once, on all those the
        n-gram model is unsure of, at a fraction of its cost per question alone."""
        hints = lang_hints if lang_hints is not None else [None] * len(texts)
        read = [self._read(text, lang, hint) for text, hint in zip(texts, hints, strict=True)]
        predictions = iter(self.classifier.predict_questions(
            [question for question, _ in read if question.normalized]))
        return [self._ranked(question, reply_lang, next(predictions))
                if question.normalized else
                RankedReply(self.fallback(reply_lang, question.text), [])
                for question, reply_lang in read]

    def answer_many(self, texts: Sequence[str], lang: str | None = None) -> list[Reply]:
        """`answer` for each text, in order; the classifier ranks them all in one batch."""
        return [ranked.reply for ranked in self.answer_ranked_many(texts, lang)]

    def reply_for(self, intent_id: str, lang: str | None = None) -> Reply:
        """The curated reply of one intent, as a button click asks for it."""
        intent = self._intents.get(intent_id)
        if intent is None:
            raise UnknownIntentError(f"unknown intent {intent_id!r}")
        reply_lang = self.language(lang)
        return self._reply_with(intent, reply_lang, intent.question[reply_lang], 1.0)

    def fallback(self, lang: str | None = None, question: str = "",
                 confidence: float = 0.0) -> Reply:
        """Say plainly that this is not something the bot can answer, and list what it can."""
        reply_lang = self.language(lang)
        return Reply(question=question, kind="fallback", intent=None, confidence=confidence,
                     lang=reply_lang, answer=self.kb.fallback[reply_lang],
                     suggestions=self._topics[reply_lang])

    def topics(self, lang: str | None = None) -> list[Suggestion]:
        """Every FAQ question the bot can answer, in knowledge-base order."""
        return list(self._topics[self.language(lang)])

    def suggest(self, text: str, lang: str | None = None, limit: int = 25, *,
                lang_hint: str | None = None) -> list[Suggestion]:
        """FAQ questions ranked by how well they match `text` (autocomplete, inline mode), in
        the language `answer` would reply in."""
        question, reply_lang = self._read(text, lang, lang_hint)
        if not question.normalized:
            return self.topics(reply_lang)[:limit]
        ranking = self.classifier.predict_question(question).ranking
        faq_ids = [label for label, _ in ranking if self._intents[label].kind == "faq"]
        return [self._suggestions[reply_lang][label] for label in faq_ids[:limit]]

    def language(self, lang: str | None) -> str:
        """A language the knowledge base speaks: "fr-FR" becomes "fr"; unknown gives the default."""
        base = (lang or "").split("-")[0].split("_")[0].lower()
        return base if base in self.kb.languages else self.kb.default_language

    def _read(self, text: str, lang: str | None,
              lang_hint: str | None) -> tuple[Question, str]:
        """The question as kept and normalised (once, for everything core does with it), and
        the language to reply in."""
        question = Question.read(text)
        return question, self.language(lang or question_language(question) or lang_hint)

    def _ranked(self, question: Question, lang: str, prediction: Prediction) -> RankedReply:
        """The reply a prediction calls for, with the next FAQ intents after an answer."""
        reply = self._decide(question.text, lang, prediction)
        if reply.kind != "answer":
            return RankedReply(reply, [])
        others = [label for label, _ in prediction.ranking
                  if label != reply.intent and self._intents[label].kind == "faq"]
        return RankedReply(reply, others[:MAX_ALTERNATIVES])

    def _decide(self, question: str, lang: str, prediction: Prediction) -> Reply:
        """The reply a prediction calls for: fallback, clarification, answer or smalltalk."""
        if prediction.label is None:
            return self.fallback(lang, question, prediction.confidence)
        choices = self._close_candidates(prediction)
        if len(choices) > 1:
            return self._clarify(question, lang, choices, prediction.confidence)
        return self._reply_with(self._intents[prediction.label], lang, question,
                                prediction.confidence)

    def _close_candidates(self, prediction: Prediction) -> list[str]:
        """FAQ intents whose scores sit within the ambiguity margin of the best one."""
        best_label, best_score = prediction.ranking[0]
        if self._intents[best_label].kind != "faq":
            return [best_label]
        close = [label for label, score in prediction.ranking[:MAX_CLARIFY_CHOICES]
                 if best_score - score < self.classifier.margin_
                 and self._intents[label].kind == "faq"]
        return close or [best_label]

    def _clarify(self, question: str, lang: str, choices: list[str], confidence: float) -> Reply:
        return Reply(question=question, kind="clarify", intent=None, confidence=confidence,
                     lang=lang, answer=_CLARIFY_PROMPT.get(lang, _CLARIFY_PROMPT["en"]),
                     suggestions=[self._suggestions[lang][i] for i in choices])

    def _reply_with(self, intent: Intent, lang: str, question: str, confidence: float) -> Reply:
        if intent.show_topics:
            suggestions = self._topics[lang]
        else:
            suggestions = [self._suggestions[lang][i] for i in intent.related]
        kind: ReplyKind = "answer" if intent.kind == "faq" else "smalltalk"
        return Reply(question=question, kind=kind, intent=intent.id, confidence=confidence,
                     lang=lang, answer=intent.answer[lang], suggestions=suggestions)
