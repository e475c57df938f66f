"""`faqbot review`: what users asked that the bot could not answer well, for the curators.

The questions that got a fallback or a clarification, or an answer with a low confidence, are
grouped by similarity, each group with its count, its questions and the intents the classifier
finds nearest. Two questions are similar when their wording is (character n-gram TF-IDF on
normalised text) or, given sentence embeddings, when their meaning is, across languages too:
"combien de drones l'armée va acheter" and "combien de drones vont être achetés" share few
n-grams but one meaning. The choices users made after a clarification are labelled examples.
Answers users marked "not helpful" (feedback buttons) are grouped the same way, with the
intents answered and what users chose instead. core/review_report.py prints the result and
writes it as a knowledge-base file a curator edits and merges.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from core.bot import FAQBot
from core.encoder import Embed
from core.knowledge import KnowledgeBase
from core.questionlog.interface import NONE_OF_THESE, NOT_HELPFUL, LoggedQuestion
from core.text import normalize

# An answer below this confidence is worth a curator's look even though it was given.
LOW_CONFIDENCE = 0.7
# Two questions whose n-gram vectors have at least this cosine similarity share a group.
SIMILARITY = 0.6
# ... and so do two whose sentence embeddings have at least this one. Chosen on the labelled
# question pairs of tests/test_review.py: the lowest step of 0.05 at which no two different
# questions merge (the closest two score 0.77); 7 of the 18 pairs that ask one thing reach
# it, against 2 for the wording alone.
MEANING_SIMILARITY = 0.8
NEAREST_INTENTS = 3
# An intent scoring less than this on a group is not near it: the group is off-topic or new.
NEAR_SCORE = 0.05


@dataclass(frozen=True)
class QuestionGroup:
    """Similar questions: how often they were asked, how the bot replied, what is near."""

    count: int
    questions: list[tuple[str, int]]  # distinct questions (as typed most often) and counts
    kinds: dict[str, int]  # fallback / clarify / answer / smalltalk -> count
    lang: str  # the most common reply language
    nearest: list[tuple[str, float]]  # intents with a mean classifier score >= NEAR_SCORE
    choices: dict[str, int] = field(default_factory=dict)  # after clarify: intent -> count

    @property
    def mostly_refused(self) -> bool:
        """More of these questions got a fallback (or "none of these") than anything else."""
        refused = self.kinds.get("fallback", 0) + self.choices.get(NONE_OF_THESE, 0)
        return refused * 2 > self.count


@dataclass(frozen=True)
class LabelledQuestion:
    """A question whose intent a user chose after a clarification."""

    intent: str
    question: str
    lang: str
    count: int


@dataclass(frozen=True)
class UnhelpfulQuestion:
    """A question whose answer users marked not helpful."""

    text: str
    marks: int  # "not helpful" clicks
    chosen: str | None  # the intent users most often chose instead; None when none was


@dataclass(frozen=True)
class UnhelpfulGroup:
    """Similar questions whose answers users marked not helpful."""

    marks: int
    questions: list[UnhelpfulQuestion]
    answered: dict[str, int]  # the intent answered -> marks
    chosen: dict[str, int]  # what users chose instead (an intent or NONE_OF_THESE) -> count
    lang: str


@dataclass(frozen=True)
class Review:
    """Everything `faqbot review` shows."""

    since: datetime | None
    questions: int  # all questions logged in the period
    to_review: int  # those that got fallback, clarify or a low confidence
    without_text: int  # among those, questions logged with FAQBOT_LOG_TEXT=0
    groups: list[QuestionGroup]
    labelled: list[LabelledQuestion]
    unhelpful: list[UnhelpfulGroup]
    unhelpful_without_text: int  # answers marked not helpful, logged with FAQBOT_LOG_TEXT=0

    def as_dict(self) -> dict[str, Any]:
        """The `--json` form."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "questions": self.questions, "to_review": self.to_review,
            "without_text": self.without_text,
            "groups": [{"count": group.count,
                        "questions": [{"text": text, "count": count}
                                      for text, count in group.questions],
                        "kinds": group.kinds, "lang": group.lang,
                        "nearest": [{"intent": intent, "score": round(score, 3)}
                                    for intent, score in group.nearest],
                        "choices": {choice_name(choice): count
                                    for choice, count in group.choices.items()}}
                       for group in self.groups],
            "labelled": [{"intent": item.intent, "question": item.question, "lang": item.lang,
                          "count": item.count} for item in self.labelled],
            "not_helpful": [{"marks": group.marks, "lang": group.lang,
                             "answered": group.answered,
                             "chosen": {choice_name(choice): count
                                        for choice, count in group.chosen.items()},
                             "questions": [{"text": item.text, "marks": item.marks,
                                            "chosen": item.chosen}
                                           for item in group.questions]}
                            for group in self.unhelpful],
            "not_helpful_without_text": self.unhelpful_without_text,
        }


def needs_review(entry: LoggedQuestion) -> bool:
    """Fallbacks, clarifications and answers given with a low confidence."""
    return entry.kind in ("fallback", "clarify") or entry.confidence < LOW_CONFIDENCE


def build_review(entries: Sequence[LoggedQuestion], bot: FAQBot,
                 since: datetime | None = None, *, embed: Embed | None = None) -> Review:
    """Group the questions to review (by meaning too, given `embed`) and collect the labelled
    ones."""
    flagged = [entry for entry in entries if needs_review(entry)]
    with_text = [entry for entry in flagged
                 if entry.question is not None and normalize(entry.question)]
    unhelpful = [entry for entry in entries if _marks(entry)]
    return Review(since=since, questions=len(entries), to_review=len(flagged),
                  without_text=sum(entry.question is None for entry in flagged),
                  groups=_groups(with_text, bot, embed), labelled=_labelled(with_text, bot.kb),
                  unhelpful=_unhelpful_groups(unhelpful, embed),
                  unhelpful_without_text=sum(entry.question is None for entry in unhelpful))


def _groups(entries: list[LoggedQuestion], bot: FAQBot,
            embed: Embed | None) -> list[QuestionGroup]:
    by_form: dict[str, list[LoggedQuestion]] = defaultdict(list)
    for entry in entries:
        by_form[normalize(entry.question or "")].append(entry)
    forms = sorted(by_form, key=lambda form: (-len(by_form[form]), form))
    # As typed (accents and all), which the sentence encoder reads better than the normal form.
    typed = [_most_common(entry.question or "" for entry in by_form[form]) for form in forms]
    groups = [_group([by_form[forms[index]] for index in members], bot)
              for members in group_similar(typed, embed=embed)]
    return sorted(groups, key=lambda group: -group.count)


def group_similar(texts: Sequence[str], threshold: float = SIMILARITY, *,
                  embed: Embed | None = None) -> list[list[int]]:
    """Indexes of `texts` in groups: each text joins the group whose first text is the most
    similar, if similar enough, else starts one. Put the most frequent texts first: they lead.

    Similar enough: n-gram cosine at least `threshold`, or, with `embed` (sentence embeddings
    of texts, rows of unit length), embedding cosine at least MEANING_SIMILARITY. Each cosine
    is divided by its own bar, so the better of the two decides.
    """
    if not texts:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer  # only review needs it

    wordings = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True
                               ).fit_transform([normalize(text) for text in texts])
    meanings = None if embed is None else embed(texts)
    leaders: list[int] = []
    groups: list[list[int]] = []
    for index in range(len(texts)):
        if leaders:
            closeness = (wordings[leaders] @ wordings[index].T).toarray().ravel() / threshold
            if meanings is not None:
                closeness = np.maximum(closeness,
                                       meanings[leaders] @ meanings[index] / MEANING_SIMILARITY)
            best = int(closeness.argmax())
            if closeness[best] >= 1.0:
                groups[best].append(index)
                continue
        leaders.append(index)
        groups.append([index])
    return groups


def _group(forms: list[list[LoggedQuestion]], bot: FAQBot) -> QuestionGroup:
    entries = [entry for form in forms for entry in form]
    questions = [(_most_common(entry.question or "" for entry in form), len(form))
                 for form in forms]
    choices = Counter(entry.choice for entry in entries if entry.choice)
    return QuestionGroup(count=len(entries), questions=questions,
                         kinds=dict(Counter(entry.kind for entry in entries)),
                         lang=_most_common(entry.lang for entry in entries),
                         nearest=_nearest(bot, [text for text, _ in questions]),
                         choices=dict(choices))


def _nearest(bot: FAQBot, texts: list[str]) -> list[tuple[str, float]]:
    """The intents with the best mean score over the group's questions, if near enough."""
    totals: defaultdict[str, float] = defaultdict(float)
    sample = texts[:20]
    for text in sample:
        for intent, score in bot.classifier.predict_one(text).ranking:
            totals[intent] += score
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:NEAREST_INTENTS]
    return [(intent, total / len(sample)) for intent, total in ranked
            if total / len(sample) >= NEAR_SCORE]


def _labelled(entries: list[LoggedQuestion], kb: KnowledgeBase) -> list[LabelledQuestion]:
    chosen: dict[tuple[str, str], list[LoggedQuestion]] = defaultdict(list)
    for entry in entries:
        if entry.choice and entry.choice != NONE_OF_THESE and kb.intent(entry.choice):
            chosen[entry.choice, normalize(entry.question or "")].append(entry)
    labelled = [LabelledQuestion(intent=intent, lang=_most_common(e.lang for e in group),
                                 question=_most_common(e.question or "" for e in group),
                                 count=len(group))
                for (intent, _), group in chosen.items()]
    return sorted(labelled, key=lambda item: (-item.count, item.intent, item.question))


def _marks(entry: LoggedQuestion) -> int:
    """How many users marked the answer to this question not helpful."""
    return sum(item.verdict == NOT_HELPFUL for item in entry.feedback)


def _unhelpful_groups(entries: list[LoggedQuestion],
                      embed: Embed | None) -> list[UnhelpfulGroup]:
    by_form: dict[str, list[LoggedQuestion]] = defaultdict(list)
    for entry in entries:
        if entry.question is not None and normalize(entry.question):
            by_form[normalize(entry.question)].append(entry)
    marks = {form: sum(_marks(entry) for entry in group) for form, group in by_form.items()}
    forms = sorted(by_form, key=lambda form: (-marks[form], form))
    typed = [_most_common(entry.question or "" for entry in by_form[form]) for form in forms]
    groups = [_unhelpful_group([by_form[forms[index]] for index in members])
              for members in group_similar(typed, embed=embed)]
    return sorted(groups, key=lambda group: -group.marks)


def _unhelpful_group(forms: list[list[LoggedQuestion]]) -> UnhelpfulGroup:
    entries = [entry for form in forms for entry in form]
    answered: Counter[str] = Counter()
    for entry in entries:
        answered[entry.intent or "?"] += _marks(entry)
    return UnhelpfulGroup(
        marks=sum(answered.values()), questions=[_unhelpful_question(form) for form in forms],
        answered=dict(answered), chosen=dict(_choices_instead(entries)),
        lang=_most_common(entry.lang for entry in entries))


def _unhelpful_question(form: list[LoggedQuestion]) -> UnhelpfulQuestion:
    intents = [(choice, count) for choice, count in _choices_instead(form).most_common()
               if choice != NONE_OF_THESE]
    return UnhelpfulQuestion(text=_most_common(entry.question or "" for entry in form),
                             marks=sum(_marks(entry) for entry in form),
                             chosen=intents[0][0] if intents else None)


def _choices_instead(entries: list[LoggedQuestion]) -> Counter[str]:
    return Counter(item.choice for entry in entries for item in entry.feedback
                   if item.verdict == NOT_HELPFUL and item.choice)


def _most_common(values: Iterable[str]) -> str:
    return Counter(values).most_common(1)[0][0]


def choice_name(choice: str) -> str:
    return "none of these" if choice == NONE_OF_THESE else choice
