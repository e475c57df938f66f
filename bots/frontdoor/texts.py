"""Every interface text the front doors show, in one place, and `ui_text` to pick one.

The answers themselves come only from the knowledge base; these strings are the chrome around
them (buttons, notices, greetings, command menus), never answers.
"""

from __future__ import annotations

UI_TEXTS: dict[str, dict[str, str]] = {
    "none_of_these": {"fr": "Aucune de ces questions", "en": "None of these"},
    "topics_title": {"fr": "Les questions auxquelles je sais répondre :",
                     "en": "The questions I can answer:"},
    "rate_limited": {"fr": "Doucement : trop de messages d'un coup. Réessayez dans un instant.",
                     "en": "Easy: too many messages at once. Please try again in a moment."},
    "stale_button": {"fr": "Ce bouton n'est plus valable. Posez votre question à nouveau.",
                     "en": "This button is no longer valid. Please ask your question again."},
    "error": {"fr": "Désolé, une erreur est survenue. Réessayez dans un instant.",
              "en": "Sorry, something went wrong. Please try again in a moment."},
    "ask_usage": {"fr": "Utilisation : /ask votre question", "en": "Usage: /ask your question"},
    "related": {"fr": "Voir aussi :", "en": "See also:"},
    "helpful": {"fr": "Utile", "en": "Helpful"},
    "not_helpful": {"fr": "Pas utile", "en": "Not helpful"},
    "feedback_thanks": {"fr": "Merci pour votre avis !", "en": "Thanks for your feedback!"},
    "feedback_alternatives": {"fr": "Merci ! L'un de ces sujets répond-il mieux ?",
                              "en": "Thanks! Does one of these topics answer better?"},
    "not_here": {"fr": "Je ne réponds pas sur ce serveur.",
                 "en": "I do not answer on this server."},
    "start": {"fr": "Bonjour ! Posez-moi votre question, ou choisissez un sujet :",
              "en": "Hello! Ask me your question, or pick a topic:"},
    # {bot} is the bot's user name, where the platform has one.
    "help": {
        "fr": "Posez votre question en quelques mots, en français ou en anglais : je réponds "
              "avec les réponses de la FAQ. Dans un groupe, mentionnez @{bot}, répondez à l'un "
              "de mes messages ou écrivez /ask suivi de votre question. /faq affiche les sujets.",
        "en": "Ask your question in a few words, in French or English: I answer from the FAQ. "
              "In a group, mention @{bot}, reply to one of my messages or write /ask followed "
              "by your question. /faq shows the topics.",
    },
    # The command menu (its descriptions; the command names are the same in every language).
    "command_start": {"fr": "Commencer et voir les sujets", "en": "Start and see the topics"},
    "command_help": {"fr": "Comment me poser une question", "en": "How to ask me a question"},
    "command_faq": {"fr": "Voir les questions auxquelles je réponds",
                    "en": "See the questions I can answer"},
    "command_ask": {"fr": "Poser une question (utile dans un groupe)",
                    "en": "Ask a question (handy in groups)"},
}

# The languages every text above is written in.
LANGUAGES = ("fr", "en")

# Slash-command names, option names and descriptions where the platform translates them itself
# (Discord): written in English, its default locale, and translated here.
FRENCH_COMMANDS = {
    "ask": "demander",
    "Ask the FAQ a question": "Poser une question à la FAQ",
    "question": "question",
    "Your question": "Votre question",
    "private": "privé",
    "Show the answer to you only": "Ne montrer la réponse qu'à vous",
    "faq": "faq",
    "Browse the questions I can answer": "Parcourir les questions auxquelles je sais répondre",
}


def ui_text(key: str, lang: str) -> str:
    """An interface text in `lang`, English when that language has none."""
    texts = UI_TEXTS[key]
    return texts.get(lang, texts["en"])
