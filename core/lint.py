"""Warnings on a valid knowledge base: things that load fine but will hurt answers."""

from __future__ import annotations

from itertools import combinations

from core.knowledge import KnowledgeBase
from core.text import normalize

MIN_EXAMPLES = {"faq": 10, "smalltalk": 5}
NEAR_DUPLICATE_JACCARD = 0.75


def lint_knowledge_base(kb: KnowledgeBase) -> list[str]:
    """Human-readable warnings: thin intents, missing example languages, near-duplicates."""
    return _thin_intents(kb) + _near_duplicates(kb)


def _thin_intents(kb: KnowledgeBase) -> list[str]:
    warnings = []
    for intent in kb.intents:
        for lang in kb.languages:
            count = len(intent.examples.get(lang, []))
            if count == 0:
                warnings.append(f"intent {intent.id!r}: no examples in {lang!r}")
            elif count < MIN_EXAMPLES[intent.kind]:
                warnings.append(f"intent {intent.id!r}: only {count} examples in {lang!r}")
    return warnings


def _near_duplicates(kb: KnowledgeBase) -> list[str]:
    """Examples of two different intents whose words almost coincide confuse the classifier."""
    texts, labels = kb.training_data()
    words = [frozenset(normalize(text).split()) for text in texts]
    warnings = []
    for i, j in combinations(range(len(texts)), 2):
        if labels[i] == labels[j] or len(words[i]) < 2 or len(words[j]) < 2:
            continue
        overlap = len(words[i] & words[j]) / len(words[i] | words[j])
        if overlap >= NEAR_DUPLICATE_JACCARD:
            warnings.append(f"near-duplicate examples: {texts[i]!r} ({labels[i] or 'out_of_scope'})"
                            f" ~ {texts[j]!r} ({labels[j] or 'out_of_scope'})")
    return warnings
