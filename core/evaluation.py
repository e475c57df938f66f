"""Cross-validation of a knowledge base: how well its own examples are recognised.

Each fold trains a fresh IntentClassifier on the other folds, so a figure here is what the bot
does on phrasings it has not seen, not on what it memorised.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.bot import FAQBot, Reply
from core.cache import new_classifier
from core.errors import FaqbotError
from core.knowledge import KnowledgeBase

OUT_OF_SCOPE = "(out of scope)"
# What a user would have got for a held-out example (see `_outcome`), in the order printed.
IN_SCOPE_OUTCOMES = ("right answer", "asked (right one offered)", "asked (right one missing)",
                     "wrong answer", "refused")
OOS_OUTCOMES = ("refused", "asked", "answered")


@dataclass(frozen=True)
class IntentScore:
    """Precision, recall and F1 of one intent over all folds."""

    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvaluationReport:
    """What `faqbot evaluate` prints."""

    folds: int
    examples: int
    in_scope_accuracy: float
    oos_precision: float
    oos_recall: float
    per_intent: list[IntentScore]
    confusions: list[tuple[str, str, int]]
    # Outcome -> count, for in-scope and for out-of-scope examples: unlike the figures above,
    # these count the clarifications the bot asks instead of answering.
    in_scope_replies: dict[str, int]
    oos_replies: dict[str, int]
    classifier: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folds": self.folds,
            "examples": self.examples,
            "in_scope_accuracy": self.in_scope_accuracy,
            "oos_precision": self.oos_precision,
            "oos_recall": self.oos_recall,
            "per_intent": [vars(score) for score in self.per_intent],
            "confusions": [
                {"expected": expected, "predicted": predicted, "count": count}
                for expected, predicted, count in self.confusions
            ],
            "in_scope_replies": self.in_scope_replies,
            "oos_replies": self.oos_replies,
            "classifier": self.classifier,
        }


def cross_validate(kb: KnowledgeBase, folds: int = 5, seed: int = 0) -> EvaluationReport:
    """Stratified k-fold cross-validation of the classifier on the knowledge base's examples,
    and of the replies the bot would have given (clarifications included)."""
    from sklearn.model_selection import StratifiedKFold  # only evaluation needs it

    texts, labels = kb.training_data()
    strata = [label or OUT_OF_SCOPE for label in labels]
    _check_folds(strata, folds)
    predicted: list[str] = [""] * len(texts)
    outcomes: list[str] = [""] * len(texts)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(texts, strata):
        model = new_classifier(kb).fit([texts[i] for i in train], [labels[i] for i in train])
        held_out = [texts[i] for i in test]
        replies = FAQBot(kb, model).answer_many(held_out)
        for index, prediction, reply in zip(test, model.predict(held_out), replies, strict=True):
            predicted[index] = prediction.label or OUT_OF_SCOPE
            outcomes[index] = _outcome(reply, labels[index])
    full_model = new_classifier(kb).fit(texts, labels)
    return _report(strata, predicted, outcomes, folds, full_model.describe())


def _check_folds(strata: list[str], folds: int) -> None:
    """Each fold holds out some of every intent's texts: the rarest needs one per fold."""
    count, rarest = min((count, name) for name, count in Counter(strata).items())
    if count < folds:
        raise FaqbotError(f"{folds}-fold cross-validation needs at least {folds} texts per "
                          f"intent (its question included); {rarest!r} has {count}: add "
                          "examples, or use fewer folds")


def _outcome(reply: Reply, expected: str | None) -> str:
    """What the user got, against the intent the example belongs to (None: out of scope)."""
    if reply.kind == "fallback":
        return "refused"
    if expected is None:
        return "asked" if reply.kind == "clarify" else "answered"
    if reply.kind == "clarify":
        offered = any(suggestion.intent == expected for suggestion in reply.suggestions)
        return "asked (right one offered)" if offered else "asked (right one missing)"
    return "right answer" if reply.intent == expected else "wrong answer"


def _tally(outcomes: list[str], names: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(outcomes)
    return {name: counts[name] for name in names}


def _report(expected: list[str], predicted: list[str], outcomes: list[str], folds: int,
            chosen: dict[str, Any]) -> EvaluationReport:
    pairs = list(zip(expected, predicted, strict=True))
    outcome_of = list(zip(outcomes, expected, strict=True))
    in_scope = [(e, p) for e, p in pairs if e != OUT_OF_SCOPE]
    oos_scores = _score(OUT_OF_SCOPE, pairs)
    intents = sorted({e for e, _ in in_scope})
    confusions = Counter((e, p) for e, p in pairs if e != p)
    return EvaluationReport(
        folds=folds,
        examples=len(pairs),
        in_scope_accuracy=_ratio(sum(e == p for e, p in in_scope), len(in_scope)),
        oos_precision=oos_scores.precision,
        oos_recall=oos_scores.recall,
        per_intent=[_score(intent, pairs) for intent in intents],
        confusions=[(e, p, n) for (e, p), n in confusions.most_common(10)],
        in_scope_replies=_tally([o for o, e in outcome_of if e != OUT_OF_SCOPE],
                                IN_SCOPE_OUTCOMES),
        oos_replies=_tally([o for o, e in outcome_of if e == OUT_OF_SCOPE], OOS_OUTCOMES),
        classifier=chosen,
    )


def _score(label: str, pairs: list[tuple[str, str]]) -> IntentScore:
    true_positive = sum(e == p == label for e, p in pairs)
    predicted = sum(p == label for _, p in pairs)
    support = sum(e == label for e, _ in pairs)
    precision = _ratio(true_positive, predicted)
    recall = _ratio(true_positive, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return IntentScore(label, precision, recall, f1, support)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def format_report(report: EvaluationReport) -> str:
    """A plain-text rendering for curators."""
    lines = [
        f"{report.examples} examples, {report.folds}-fold cross-validation",
        f"in-scope accuracy      {report.in_scope_accuracy:6.1%}",
        f"out-of-scope precision {report.oos_precision:6.1%}",
        f"out-of-scope recall    {report.oos_recall:6.1%}",
        f"classifier: {report.classifier}",
        "",
        f"{'intent':<28} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>5}",
    ]
    lines += [f"{s.intent:<28} {s.precision:6.1%} {s.recall:6.1%} {s.f1:6.1%} {s.support:5d}"
              for s in report.per_intent]
    lines += ["", "replies the bot would have given (clarifications included)",
              _shares("in scope", report.in_scope_replies),
              _shares("out of scope", report.oos_replies)]
    if report.confusions:
        lines += ["", "most confused (expected -> predicted: count)"]
        lines += [f"  {e} -> {p}: {n}" for e, p, n in report.confusions]
    return "\n".join(lines)


def _shares(title: str, counts: dict[str, int]) -> str:
    """"  in scope (1195): right answer 76.3%, ..." for one group of examples."""
    total = sum(counts.values())
    shares = ", ".join(f"{name} {_ratio(count, total):.1%}" for name, count in counts.items())
    return f"  {title} ({total}): {shares}"
