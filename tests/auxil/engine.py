"""A bot whose replies do not move with the engine's tuning, for the tests of what surrounds it."""

from __future__ import annotations

from core import FAQBot, IntentClassifier, KnowledgeBase

# On the tiny knowledge base, a clarification between the address and the opening hours.
AMBIGUOUS = "adresse horaires"


def pinned_bot(knowledge: KnowledgeBase) -> FAQBot:
    """A bot with its cut-offs pinned (not chosen by cross-validation) that reads n-grams only
    (the encoder finds one meaning in AMBIGUOUS), so that AMBIGUOUS stays a clarification
    whatever the engine's tuning: the tests that use it are about the adapters and the service."""
    classifier = IntentClassifier(threshold=0.3, margin=0.3, embedding_weight=0.0)
    return FAQBot(knowledge, classifier.fit(*knowledge.training_data()))
