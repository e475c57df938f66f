"""Cross-validation report: the classifier's figures and the replies a user would have got."""

from __future__ import annotations

from pathlib import Path

from core import Reply, Suggestion, load_knowledge_base
from core.evaluation import IN_SCOPE_OUTCOMES, OOS_OUTCOMES, _outcome, cross_validate


def reply(kind: str, intent: str | None = None, offered: tuple[str, ...] = ()) -> Reply:
    return Reply(question="q", kind=kind, intent=intent, confidence=0.5, lang="en", answer="a",
                 suggestions=[Suggestion(intent=i, question=i) for i in offered])


def test_each_reply_counts_as_what_the_user_got() -> None:
    assert _outcome(reply("answer", "delivery"), "delivery") == "right answer"
    assert _outcome(reply("smalltalk", "greeting"), "delivery") == "wrong answer"
    assert _outcome(reply("clarify", None, ("address", "delivery")), "delivery") == \
        "asked (right one offered)"
    assert _outcome(reply("clarify", None, ("address", "hours")), "delivery") == \
        "asked (right one missing)"
    assert _outcome(reply("fallback"), "delivery") == "refused"
    assert _outcome(reply("fallback"), None) == "refused"
    assert _outcome(reply("clarify", None, ("address", "hours")), None) == "asked"
    assert _outcome(reply("answer", "address"), None) == "answered"


def test_every_example_gets_one_reply_outcome(tiny_kb_path: Path) -> None:
    kb = load_knowledge_base(tiny_kb_path)
    labels = kb.training_data()[1]
    report = cross_validate(kb, folds=3)
    assert tuple(report.in_scope_replies) == IN_SCOPE_OUTCOMES
    assert tuple(report.oos_replies) == OOS_OUTCOMES
    assert sum(report.in_scope_replies.values()) == sum(label is not None for label in labels)
    assert sum(report.oos_replies.values()) == sum(label is None for label in labels)
    # A right answer is an accepted right prediction, so it cannot exceed the accuracy.
    right = report.in_scope_replies["right answer"] / sum(report.in_scope_replies.values())
    assert right <= report.in_scope_accuracy + 1e-9
