"""`faqbot review`: what users asked that the bot could not answer well, for the curators.

The questions that got a fallback or a clarification, or an answer with a low confidence, are
grouped by similarity, each group with its count, its questions and the intents the classifier
finds nearest. Two questions are similar when their wording is (character n-gram TF-IDF on
normalised text) or, given sentence embeddings, when their meaning is, across languages too:
"combien de drones l'armée va acheter" and "combien de drones vont être achetés" share few
n-grams but one meaning. The choices users made after a clarification are labelled examples.
Answers users marked "not helpful" (feedback buttons) are grouped the same way, with the
intents answered and what users chose instead. `export_candidates` writes them all as a
knowledge-base file a curator edits and merges.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import yaml

from core.bot import FAQBot
from core.encoder import Embed
from core.knowledge import KnowledgeBase
from core.questionlog.interface import NONE_OF_THESE, NOT_HELPFUL, LoggedQuestion
from core.text import normalize, printable

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
SHOWN_QUESTIONS = 5


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
                        "choices": {_choice_name(choice): count
                                    for choice, count in group.choices.items()}}
                       for group in self.groups],
            "labelled": [{"intent": item.intent, "question": item.question, "lang": item.lang,
                          "count": item.count} for item in self.labelled],
            "not_helpful": [{"marks": group.marks, "lang": group.lang,
                             "answered": group.answered,
                             "chosen": {_choice_name(choice): count
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


def _choice_name(choice: str) -> str:
    return "none of these" if choice == NONE_OF_THESE else choice


# ---------------------------------------------------------------------------------------------
# Text report


def format_review(review: Review) -> str:
    """The report `faqbot review` prints."""
    period = f"since {review.since:%Y-%m-%d %H:%M} UTC" if review.since else "in the log"
    lines = [f"{review.questions} questions {period}; {review.to_review} to review "
             f"(fallback, clarify or confidence below {LOW_CONFIDENCE}), "
             f"in {len(review.groups)} groups."]
    if review.without_text:
        lines.append(f"{review.without_text} of them were logged without their text "
                     "(FAQBOT_LOG_TEXT=0).")
    for number, group in enumerate(review.groups, 1):
        lines += ["", f"{number:>3}. {_questions(group.count)} ({_kinds(group)}), {group.lang}",
                  "     nearest: " + (_nearest_text(group) or "no intent is close (off-topic, "
                                                            "or a topic the knowledge base lacks)")]
        lines += [f'     "{text}"' + (f" x{count}" if count > 1 else "")
                  for text, count in group.questions[:SHOWN_QUESTIONS]]
        if len(group.questions) > SHOWN_QUESTIONS:
            lines.append(f"     ... and {len(group.questions) - SHOWN_QUESTIONS} more")
        if group.choices:
            chosen = ", ".join(f"{_choice_name(choice)} {count}"
                               for choice, count in _by_count(group.choices))
            lines.append(f"     chosen after clarify: {chosen}")
    if review.labelled:
        lines += ["", "Labelled by users after a clarification:"]
        lines += [f'  {item.intent} <- "{item.question}"'
                  + (f" x{item.count}" if item.count > 1 else "") for item in review.labelled]
    return _escaped(lines + _unhelpful_lines(review))


def _unhelpful_lines(review: Review) -> list[str]:
    """The section "answers users marked not helpful"."""
    if not review.unhelpful and not review.unhelpful_without_text:
        return []
    lines = ["", f"Answers users marked not helpful, in {len(review.unhelpful)} groups:"]
    if review.unhelpful_without_text:
        lines.append(f"  ({review.unhelpful_without_text} more logged without their text, "
                     "FAQBOT_LOG_TEXT=0)")
    for number, group in enumerate(review.unhelpful, 1):
        answered = ", ".join(f"{intent} {count}" for intent, count in _by_count(group.answered))
        chosen = [f"{_choice_name(choice)} {count}" for choice, count in _by_count(group.chosen)]
        unchosen = group.marks - sum(group.chosen.values())
        chosen += [f"no choice {unchosen}"] if unchosen else []
        lines += ["", f"{number:>3}. {group.marks} not helpful, {group.lang}; answered: "
                      f"{answered}",
                  f"     chosen instead: {', '.join(chosen)}"]
        lines += [f'     "{item.text}"' + (f" x{item.marks}" if item.marks > 1 else "")
                  for item in group.questions[:SHOWN_QUESTIONS]]
        if len(group.questions) > SHOWN_QUESTIONS:
            lines.append(f"     ... and {len(group.questions) - SHOWN_QUESTIONS} more")
    return lines


def _escaped(lines: list[str]) -> str:
    """The lines joined, each escaped: logged questions are what users typed, and must not
    drive a curator's terminal. In the export, the escapes sit inside double-quoted scalars,
    where YAML reads them back as the characters they stand for."""
    return "\n".join(printable(line) for line in lines)


def _by_count(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _questions(count: int) -> str:
    return f"{count} question" + ("s" if count > 1 else "")


def _kinds(group: QuestionGroup) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in _by_count(group.kinds))


def _nearest_text(group: QuestionGroup) -> str:
    return ", ".join(f"{intent} {score:.2f}" for intent, score in group.nearest)


# ---------------------------------------------------------------------------------------------
# Export in the knowledge-base format


@dataclass(frozen=True)
class _Candidate:
    text: str
    note: str


def export_candidates(review: Review, kb: KnowledgeBase, source: str = "") -> str | None:
    """A knowledge-base file (YAML) holding the candidate examples; None if there are none.

    Labelled questions go under the intent users chose. A question whose answer users marked
    not helpful goes under the intent they most often chose instead, or under out_of_scope
    when they chose none. Each group goes under out_of_scope when the bot mostly refused it or
    no intent is near, else under its nearest intent. A question the knowledge base already
    holds, or one whose owner left the knowledge base, is left out. Every intent is listed, with its
    question and answer copied for reference, so that a curator can move a line to any of
    them, and the file validates on its own (`faqbot validate --kb FILE`).
    """
    owners = _place_candidates(review, kb)
    if not any(any(by_lang.values()) for by_lang in owners.values()):
        return None
    lines = _export_header(review, source)
    lines += [f"version: {kb.version}", f"languages: {_flow(kb.languages)}",
              f"default_language: {_scalar(kb.default_language)}",
              f"fallback: {_flow(kb.fallback)}", "intents:"]
    for intent in kb.intents:
        lines += [f"  - id: {_scalar(intent.id)}", f"    kind: {_scalar(intent.kind)}",
                  f"    question: {_flow(intent.question)}",
                  f"    answer: {_flow(intent.answer)}"]
        lines += _examples(owners[intent.id], "    examples:", "      ")
    lines += _examples(owners.get(None, {}), "out_of_scope:", "  ")
    return _escaped(lines) + "\n"


def _place_candidates(review: Review, kb: KnowledgeBase,
                      ) -> dict[str | None, dict[str, list[_Candidate]]]:
    """owner (an intent id, None for out_of_scope) -> language -> candidates."""
    known = {normalize(text) for text in kb.training_data()[0]}
    owners: dict[str | None, dict[str, list[_Candidate]]] = defaultdict(
        lambda: defaultdict(list))

    def add(owner: str | None, lang: str, text: str, note: str) -> None:
        form = normalize(text)
        if form and form not in known:
            known.add(form)
            owners[owner][lang].append(_Candidate(text, note))

    for item in review.labelled:
        times = f"{item.count} times" if item.count > 1 else "once"
        add(item.intent, item.lang, item.question, f"chosen {times} after a clarification")
    for unhelpful in review.unhelpful:
        for question in unhelpful.questions:
            if question.chosen is None or kb.intent(question.chosen):
                add(question.chosen, unhelpful.lang, question.text,
                    f"answer marked not helpful {question.marks}x; answered: "
                    + ", ".join(unhelpful.answered))
    for number, group in enumerate(review.groups, 1):
        owner = None if group.mostly_refused or not group.nearest else group.nearest[0][0]
        for text, count in group.questions:
            add(owner, group.lang, text, f"group {number} ({_kinds(group)}), asked {count}x; "
                                         f"nearest: {_nearest_text(group) or 'none'}")
    return owners


def _export_header(review: Review, source: str) -> list[str]:
    period = f"since {review.since:%Y-%m-%d}" if review.since else "in the log"
    return [
        "# Candidate examples from the faqbot question log (faqbot review --export).",
        f"# {review.questions} questions {period}, {review.to_review} to review"
        + (f"; knowledge base {source}." if source else "."),
        "#",
        "# Under an intent: questions users chose it for after a clarification or instead of an",
        "# answer they marked not helpful, and groups of questions it is the nearest intent of.",
        "# Under out_of_scope: groups the bot refused, and questions whose answer users marked",
        "# not helpful without choosing another topic.",
        "# Check every line: keep it, move it to the right intent (or out_of_scope) or delete",
        "# it, then copy the examples into the knowledge base. Every intent is listed, with its",
        "# question and answer for reference only. `faqbot validate --kb THIS_FILE` checks it.",
    ]


def _examples(by_lang: dict[str, list[_Candidate]], title: str, indent: str) -> list[str]:
    if not any(by_lang.values()):
        return [f"{title} {{}}"]
    lines = [title]
    for lang, candidates in by_lang.items():
        lines.append(f"{indent}{_scalar(lang)}:")
        lines += [f"{indent}  - {_scalar(candidate.text)}  # {candidate.note}"
                  for candidate in candidates]
    return lines


def _scalar(text: str) -> str:
    """A double-quoted YAML string: any character survives, on one line."""
    return yaml.safe_dump(text, default_style='"', allow_unicode=True, width=1 << 30).strip()


def _flow(value: list[str] | dict[str, str]) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    return "{" + ", ".join(f"{_scalar(key)}: {_scalar(text)}" for key, text in value.items()) + "}"
