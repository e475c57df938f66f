"""What the Telegram and Discord adapters share: interface texts, splitting, rate limit, access."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection

# Interface texts the adapters show around curated answers. The answers themselves come only
# from the knowledge base; these strings are chrome (buttons, notices), never answers.
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
}


def ui_text(key: str, lang: str) -> str:
    """An interface text in `lang`, English when that language has none."""
    texts = UI_TEXTS[key]
    return texts.get(lang, texts["en"])


def split_message(text: str, limit: int) -> list[str]:
    """Cut text into pieces of at most `limit` characters, at paragraph, line or word breaks."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _best_cut(rest, limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def _best_cut(text: str, limit: int) -> int:
    # Prefer the latest paragraph break, then line break, then space, in the second half.
    for separator in ("\n\n", "\n", " "):
        position = text.rfind(separator, limit // 2, limit)
        if position > 0:
            return position
    return limit


class RateLimiter:
    """Per-user sliding window: at most `messages` in any `seconds`; one notice per flood.

    `check(user)` returns "allow", "notify" (first refusal of a flood: send one short notice)
    or "drop" (further refusals: stay silent so the flood gets no amplification).
    """

    def __init__(self, messages: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.messages = messages
        self.seconds = seconds
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._notified: set[int] = set()

    def check(self, user_id: int) -> str:
        now = self._clock()
        recent = self._recent.setdefault(user_id, deque())
        while recent and now - recent[0] >= self.seconds:
            recent.popleft()
        if len(recent) < self.messages:
            recent.append(now)
            self._notified.discard(user_id)
            return "allow"
        if user_id in self._notified:
            return "drop"
        self._notified.add(user_id)
        return "notify"

    def forget_idle(self) -> None:
        """Drop users with no recent message, so memory stays bounded over months."""
        now = self._clock()
        idle = [user for user, times in self._recent.items()
                if not times or now - times[-1] >= self.seconds]
        for user in idle:
            del self._recent[user]
            self._notified.discard(user)


class AccessPolicy:
    """An allow-list of chat or guild ids; an empty list lets everyone in."""

    def __init__(self, allowed: Collection[int]) -> None:
        self.allowed = frozenset(allowed)
        self.refused = 0

    def permits(self, place_id: int | None) -> bool:
        if not self.allowed:
            return True
        if place_id in self.allowed:
            return True
        self.refused += 1
        return False


class SecretFilter(logging.Filter):
    """Replaces every known secret in a log record by "[redacted]" before any handler sees it.

    Libraries log request URLs, and Telegram puts the bot token in the URL path; masking at the
    record level covers every logger and every handler at once.
    """

    def __init__(self, secrets: Collection[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are formatted later from exc_info: keep the type, mask the text.
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def install_secret_filter(secrets: Collection[str]) -> SecretFilter:
    """Attach a SecretFilter to every handler of the root logger."""
    secret_filter = SecretFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(secret_filter)
    return secret_filter
