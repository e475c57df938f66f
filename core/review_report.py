"""The report `faqbot review` prints, and its export as a knowledge-base file.

core/review.py groups the questions; this module turns its `Review` into the text a curator
reads (`format_review`) and into candidate examples in the knowledge-base format
(`export_candidates`), which a curator edits and merges. Both escape what users typed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import yaml

from core.knowledge import KnowledgeBase
from core.review import LOW_CONFIDENCE, QuestionGroup, Review, choice_name
from core.text import normalize, printable

SHOWN_QUESTIONS = 5


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
            chosen = ", ".join(f"{choice_name(choice)} {count}"
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
        chosen = [f"{choice_name(choice)} {count}" for choice, count in _by_count(group.chosen)]
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
