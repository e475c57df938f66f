"""Warnings on a valid knowledge base: thin intents, near-duplicates, one meaning filed twice."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from core import KnowledgeBase
from core.encoder import Embed, Embeddings
from core.lint import MIN_EXAMPLES, SAME_MEANING, lint_knowledge_base


@pytest.fixture
def raw(tiny_kb_path: Path) -> dict[str, Any]:
    """The tiny knowledge base as YAML data, to edit."""
    data: dict[str, Any] = yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8"))
    return data


def intent(raw: dict[str, Any], intent_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in raw["intents"] if item["id"] == intent_id)
    return found


def embedding(links: dict[str, tuple[str, float]]) -> Embed:
    """Sentence embeddings in which every text is unlike every other (one-hot rows), except
    each text of `links`, moved toward another text to the given cosine."""

    def embed(texts: Sequence[str]) -> Embeddings:
        where = {text: row for row, text in enumerate(texts)}
        rows = np.eye(len(texts), dtype=np.float32)
        for text, (toward, cosine) in links.items():
            rows[where[text]] *= math.sqrt(1 - cosine**2)
            rows[where[text], where[toward]] = cosine
        return rows

    return embed


def meanings(raw: dict[str, Any], links: dict[str, tuple[str, float]]) -> list[str]:
    kb = KnowledgeBase.model_validate(raw)
    return [warning for warning in lint_knowledge_base(kb, embed=embedding(links))
            if warning.startswith("same meaning")]


def test_thin_intents_and_missing_languages(raw: dict[str, Any]) -> None:
    assert lint_knowledge_base(KnowledgeBase.model_validate(raw)) == [
        "intent 'opening_hours': only 8 examples in 'en'",
        "intent 'address': only 9 examples in 'en'",
        "intent 'delivery': only 9 examples in 'en'"]
    for faq in ("opening_hours", "address", "delivery"):
        intent(raw, faq)["examples"]["en"] += [f"{faq} {n}" for n in range(2)]  # 10 or 11
    assert intent(raw, "help")["examples"]["en"][MIN_EXAMPLES["smalltalk"] - 1]  # 5 in 'en'
    intent(raw, "greeting")["examples"]["fr"] = ["salut", "coucou", "bonsoir", "slt"]
    del intent(raw, "help")["examples"]["fr"]
    assert lint_knowledge_base(KnowledgeBase.model_validate(raw)) == [
        "intent 'greeting': only 4 examples in 'fr'", "intent 'help': no examples in 'fr'"]


def test_near_duplicates_only_across_intents(raw: dict[str, Any]) -> None:
    saturday = "quels sont les horaires du magasin le samedi"
    intent(raw, "opening_hours")["examples"]["fr"] += [saturday, saturday.replace(" le", "")]
    raw["out_of_scope"]["fr"].append(saturday.replace("samedi", "dimanche"))  # 7 words of 9
    warnings = [warning for warning in lint_knowledge_base(KnowledgeBase.model_validate(raw))
                if warning.startswith("near-duplicate")]
    assert warnings == [f"near-duplicate examples: {saturday!r} (opening_hours) ~ "
                        "'quels sont les horaires du magasin le dimanche' (out_of_scope)"]


def test_no_comparison_of_meanings_without_an_encoder(raw: dict[str, Any]) -> None:
    assert not [warning for warning in lint_knowledge_base(KnowledgeBase.model_validate(raw))
                if warning.startswith("same meaning")]


def test_one_meaning_under_two_intents_in_two_languages(raw: dict[str, Any]) -> None:
    assert meanings(raw, {}) == []
    assert meanings(raw, {"address": ("horaires", SAME_MEANING)}) == [
        "same meaning in two languages? 'horaires' (opening_hours) ~ 'address' (address), "
        "cosine 0.75"]
    assert meanings(raw, {"address": ("horaires", SAME_MEANING - 0.01)}) == []
    # A translation under its own intent is what a knowledge base should hold.
    assert meanings(raw, {"opening hours": ("horaires", 0.99)}) == []
    # In one language, the word overlap judges instead.
    assert meanings(raw, {"adresse": ("horaires", 0.99)}) == []


def test_only_pairs_that_are_each_others_closest(raw: dict[str, Any]) -> None:
    # "address" is the closest English example to "horaires", but "livraison" is closer to it.
    found = meanings(raw, {"horaires": ("address", 0.8), "livraison": ("address", 0.9),
                           "what is the weather": ("salut", 0.95)})
    assert found == [
        "same meaning in two languages? 'salut' (greeting) ~ 'what is the weather' "
        "(out_of_scope), cosine 0.95",
        "same meaning in two languages? 'address' (address) ~ 'livraison' (delivery), "
        "cosine 0.90"]
