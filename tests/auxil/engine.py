"""A bot whose replies do not move with the engine's tuning, for the tests of what surrounds it;
and one platform message answered by a service."""

from __future__ import annotations

from bots.feedback import FeedbackTicket
from bots.service import Asked, Asker, FAQService
from core import FAQBot, IntentClassifier, KnowledgeBase, Reply

# On the tiny knowledge base, a clarification between the address and the opening hours.
AMBIGUOUS = "adresse horaires"


def pinned_bot(knowledge: KnowledgeBase) -> FAQBot:
    """A bot with its cut-offs pinned (not chosen by cross-validation) that reads n-grams only
    (the encoder finds one meaning in AMBIGUOUS), so that AMBIGUOUS stays a clarification
    whatever the engine's tuning: the tests that use it are about the adapters and the service."""
    classifier = IntentClassifier(threshold=0.3, margin=0.3, embedding_weight=0.0)
    return FAQBot(knowledge, classifier.fit(*knowledge.training_data()))


def answered(service: FAQService, text: str, asker: Asker, *,
             feedback: bool = True) -> tuple[Reply, FeedbackTicket | None]:
    """The reply to one platform message and its feedback ticket, as a front door gets them."""
    return service.answer_many_with_feedback([Asked(text, None, asker)], feedback=feedback)[0]
