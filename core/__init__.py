"""faqbot's engine: knowledge base, classifier and FAQBot. Imports no platform library."""

from core.bot import FAQBot, Reply, Suggestion
from core.classifier import IntentClassifier, Prediction
from core.config import Settings, load_settings
from core.errors import ConfigurationError, FaqbotError, KnowledgeBaseError, UnknownIntentError
from core.knowledge import Intent, KnowledgeBase, load_knowledge_base
from core.text import MAX_QUESTION_CHARS, guess_language, normalize

__all__ = [
    "MAX_QUESTION_CHARS",
    "ConfigurationError",
    "FAQBot",
    "FaqbotError",
    "Intent",
    "IntentClassifier",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "Prediction",
    "Reply",
    "Settings",
    "Suggestion",
    "UnknownIntentError",
    "guess_language",
    "load_knowledge_base",
    "load_settings",
    "normalize",
]
