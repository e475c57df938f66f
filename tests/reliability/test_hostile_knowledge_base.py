"""Hostile text in the knowledge base itself: the checks of test_hostile_input.py, run on
replies whose curated text is full of HTML, bare `&`, `<` and `>`, Discord mentions,
`@everyone` and Markdown (tests/data/hostile_kb.yaml). The shipped answers hold none of these,
so only here would a missing `html.escape` or a missing `allowed_mentions` show.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import FAQBot
from tests.reliability.test_hostile_input import (
    LiveBots,
    check_discord_message,
    check_telegram_message,
    live_bots,
    telegram_problems,
)

pytestmark = pytest.mark.reliability

HOSTILE_KB = Path(__file__).resolve().parents[1] / "data" / "hostile_kb.yaml"
# A question for each kind of reply that carries curated text: answers (one with related
# topics), the topic list and the fallback, in both languages.
QUESTIONS = {
    "HTML answer": "balises html",
    "mentions answer": "notify everyone",
    "Markdown answer with related topics": "markdown syntax",
    "topics": "aide",
    "fallback": "what is the weather tomorrow",
}
# The replies Discord shows as a message's content rather than an embed.
IN_CONTENT = {"topics", "fallback"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBots]:
    """Both adapters on the hostile knowledge base, served for the whole module."""
    yield from live_bots(FAQBot.from_path(HOSTILE_KB),
                         tmp_path_factory.mktemp("hostile-kb") / "questions.sqlite3",
                         "hostile knowledge base through Telegram and Discord")


@pytest.mark.parametrize("name", QUESTIONS)
def test_hostile_knowledge_base_through_telegram(live: LiveBots, name: str) -> None:
    reply = live.run(live.ask_telegram(QUESTIONS[name]))
    check_telegram_message(reply)
    assert "&amp;" in reply.params["text"] or "&lt;" in reply.params["text"]  # it was hostile
    live.replies += 1
    inline = live.run(live.inline_telegram(QUESTIONS[name]))
    for result in inline.params["results"]:
        assert not telegram_problems(result["input_message_content"]["message_text"])
    live.replies += 1


@pytest.mark.parametrize("name", QUESTIONS)
def test_hostile_knowledge_base_through_discord(live: LiveBots, name: str) -> None:
    for message in (live.run(live.ask_discord(QUESTIONS[name])),
                    live.run(live.mention_discord(QUESTIONS[name]))):
        check_discord_message(message)
        assert any(marker in _text(message) for marker in ("@everyone", "<@", "<b>", "*"))
        if name in IN_CONTENT:  # where a mention would ping (an embed never pings)
            assert "@everyone" in message["content"] or "@here" in message["content"]
        live.replies += 1


def _text(message: dict[str, Any]) -> str:
    embeds = message.get("embeds") or []
    return " ".join([str(message.get("content") or ""),
                     *(f"{embed.get('title', '')} {embed.get('description', '')}"
                       for embed in embeds)])
