"""Answer quality of the shipped knowledge base on held-out questions it never trained on.

tests/data/heldout.yaml was written apart from intents/faq.yaml and is never used to train or
tune it. Its topics name the article's six questions; the knowledge base splits some of them
into finer intents, so each topic accepts the intents that answer that part of the article.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core import FAQBot, Reply

HELDOUT = Path(__file__).parent / "data" / "heldout.yaml"

# The seed question of each topic must reach exactly its own intent (first in each list); a
# paraphrase may also reach an intent that answers the same part of the article.
TOPIC_INTENTS = {
    "scope": ["scope", "access", "armies_concerned", "overview"],
    "why_mistral": ["why_mistral", "sovereignty", "competition"],
    "future_defence": ["future_defence", "military_uses"],
    "amiad": ["amiad", "steering"],
    "other_entities": ["other_entities", "cea", "onera", "shom"],
    "not_only_technical": ["not_only_technical"],
}


@pytest.fixture(scope="module")
def heldout() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def bot() -> FAQBot:
    return FAQBot.default()


def _share(replies: list[Reply], good: list[bool]) -> float:
    return sum(good) / len(replies)


def _failures(items: list[dict[str, Any]], replies: list[Reply], good: list[bool]) -> str:
    return "\n".join(f"{item['text']!r} -> {reply.kind} {reply.intent} {reply.confidence:.2f}"
                     for item, reply, ok in zip(items, replies, good, strict=True) if not ok)


def test_topics_exist_in_knowledge_base(bot: FAQBot) -> None:
    for intents in TOPIC_INTENTS.values():
        for intent_id in intents:
            assert bot.kb.intent(intent_id) is not None, intent_id


def test_every_seed_question_gets_its_own_answer(bot: FAQBot, heldout: dict[str, Any]) -> None:
    assert len(heldout["seed_questions"]) == 6
    for item in heldout["seed_questions"]:
        reply = bot.answer(item["text"])
        assert (reply.kind, reply.intent) == ("answer", TOPIC_INTENTS[item["topic"]][0]), item


def test_paraphrases_get_the_right_answer(bot: FAQBot, heldout: dict[str, Any]) -> None:
    items = heldout["paraphrases"]
    assert len(items) >= 60
    replies = [bot.answer(item["text"]) for item in items]
    good = [reply.kind == "answer" and reply.intent in TOPIC_INTENTS[item["topic"]]
            for item, reply in zip(items, replies, strict=True)]
    assert _share(replies, good) >= 0.95, _failures(items, replies, good)


def test_paraphrases_answer_in_their_language(bot: FAQBot, heldout: dict[str, Any]) -> None:
    items = heldout["paraphrases"]
    replies = [bot.answer(item["text"]) for item in items]
    good = [reply.lang == item["lang"] for item, reply in zip(items, replies, strict=True)]
    assert _share(replies, good) >= 0.95, _failures(items, replies, good)


@pytest.mark.parametrize(("section", "bar"), [("near_topic", 0.80), ("off_topic", 0.95)])
def test_out_of_scope_gets_no_faq_answer(bot: FAQBot, heldout: dict[str, Any], section: str,
                                         bar: float) -> None:
    items = heldout[section]
    assert len(items) >= 20
    replies = [bot.answer(item["text"]) for item in items]
    good = [reply.kind != "answer" for reply in replies]
    assert _share(replies, good) >= bar, _failures(items, replies, good)
