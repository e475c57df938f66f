"""The console chat: its banner, answers, a suggestion picked by its number, and the ways out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from bots.console import chat, render_reply
from core import FAQBot
from tests.auxil.engine import AMBIGUOUS


def scripted(*lines: str | BaseException) -> Callable[[str], str]:
    """`read` that types `lines` one by one, raising the exceptions among them."""
    typed: Iterator[str | BaseException] = iter(lines)

    def read(prompt: str) -> str:
        line = next(typed, EOFError())
        if isinstance(line, BaseException):
            raise line
        return line

    return read


def conversation(bot: FAQBot, *lines: str | BaseException, lang: str | None = None) -> list[str]:
    """What the console writes after its banner."""
    written: list[str] = []
    chat(bot, lang, read=scripted(*lines), write=written.append)
    return written[1:]


def test_a_reply_lists_its_suggestions_numbered(clarifying_bot: FAQBot) -> None:
    reply = clarifying_bot.answer(AMBIGUOUS)
    assert render_reply(reply).splitlines() == [reply.answer, "  1. Où se trouve le magasin ?",
                                                "  2. Quels sont les horaires d'ouverture ?"]
    assert render_reply(clarifying_bot.answer("salut")) == "Bonjour ! Posez-moi une question."


def test_a_number_picks_a_suggestion_of_the_last_reply(clarifying_bot: FAQBot) -> None:
    replies = conversation(clarifying_bot, AMBIGUOUS, "2", "2")
    assert replies[0] == render_reply(clarifying_bot.answer(AMBIGUOUS))
    assert replies[1].splitlines()[0] == "Ouvert de 9 h à 17 h."
    # The opening hours' reply suggests one topic only: "2" is now a question, unanswered.
    assert replies[2] == render_reply(clarifying_bot.answer("2"))
    assert replies[-1] == ""


def test_a_picked_suggestion_keeps_the_language_unless_one_is_forced(
        clarifying_bot: FAQBot) -> None:
    english = conversation(clarifying_bot, "what are your opening hours?", "1")
    assert english[0].splitlines() == ["Open from 9 am to 5 pm.", "  1. Where is the shop?"]
    assert english[1] == "At 1 rue de la Paix."
    forced = conversation(clarifying_bot, "what are your opening hours?", "1", lang="fr")
    assert forced[0].splitlines()[0] == "Ouvert de 9 h à 17 h."
    assert forced[1] == "Au 1 rue de la Paix."


def test_quit_words_end_of_input_and_ctrl_c_end_the_chat(clarifying_bot: FAQBot) -> None:
    assert conversation(clarifying_bot, " Quitter ", "horaires") == []
    assert conversation(clarifying_bot, "exit") == []
    assert conversation(clarifying_bot, KeyboardInterrupt(), "horaires") == [""]
    assert conversation(clarifying_bot) == [""]


def test_banner_names_the_topics_of_the_loaded_knowledge_base(tiny_kb_path: Path) -> None:
    written: list[str] = []
    chat(FAQBot.from_path(tiny_kb_path), read=scripted(), write=written.append)
    banner = written[0]
    assert "Quels sont les horaires d'ouverture ?" in banner
    assert "3 topics" in banner
    assert "Mistral" not in banner and "Armed Forces" not in banner


def test_banner_follows_the_chosen_language(tiny_kb_path: Path) -> None:
    written: list[str] = []
    chat(FAQBot.from_path(tiny_kb_path), "en", read=scripted(), write=written.append)
    assert "What are the opening hours?" in written[0]
