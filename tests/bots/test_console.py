"""The console chat: its banner names the loaded knowledge base's topics, not the shipped ones."""

from __future__ import annotations

from pathlib import Path

from bots.console import chat
from core import FAQBot


def _end_of_input(prompt: str) -> str:
    raise EOFError


def test_banner_names_the_topics_of_the_loaded_knowledge_base(tiny_kb_path: Path) -> None:
    written: list[str] = []
    chat(FAQBot.from_path(tiny_kb_path), read=_end_of_input, write=written.append)
    banner = written[0]
    assert "Quels sont les horaires d'ouverture ?" in banner
    assert "3 topics" in banner
    assert "Mistral" not in banner and "Armed Forces" not in banner


def test_banner_follows_the_chosen_language(tiny_kb_path: Path) -> None:
    written: list[str] = []
    chat(FAQBot.from_path(tiny_kb_path), "en", read=_end_of_input, write=written.append)
    assert "What are the opening hours?" in written[0]
