"""The feedback buttons under a curated answer: what their payload holds and how it is read.

Telegram and Discord buttons carry a short text back when clicked (Telegram's callback_data:
64 bytes; Discord's custom_id: 100 characters, with a "faqbot:" prefix here). A feedback
button holds no text of the question, only:

- the action: `y` helpful, `n` not helpful, `c` a topic chosen instead after "not helpful";
- `ref`, the random reference under which the question was logged (it links the click to it);
- `asker`, a short hash of the asker's user id salted with `ref`, so that only the asker's
  click changes the message: in a group, everyone sees the same message, and another member's
  click is counted for that member only;
- the reply language;
- for `n`, the topics to offer instead: the next FAQ intents of the question's ranking, as
  their positions in the knowledge base (a few characters each, where three ids of up to 32
  characters would not fit) behind a fingerprint of the intent list, so that after a
  knowledge-base change the positions are recognised as stale rather than misread;
- for `c`, the chosen intent id (`-` for "none of these").

Everything a click needs is in the payload: buttons keep working after a restart, without
a lookup in the question log on the click's path. The longest payload, a choice of a 32
character intent, is 57 bytes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from bots.frontdoor.texts import ui_text
from core import KnowledgeBase, Suggestion

Action = Literal["y", "n", "c"]
NONE_CHOSEN = "-"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
# The payload's shape, also the template of the Discord button (which prefixes "faqbot:").
PATTERN = (r"f:(?P<action>[ync]):(?P<ref>[A-Za-z0-9_-]{8}):(?P<asker>[0-9a-f]{8}):"
           r"(?P<lang>[a-z]{2})(?::(?P<rest>[a-z0-9_.-]{1,40}))?")
_PAYLOAD = re.compile(PATTERN)


@dataclass(frozen=True)
class FeedbackTicket:
    """What the feedback buttons of one answer carry (see the module docstring)."""

    ref: str
    asker: str
    lang: str
    alternatives: str  # the encoded topics to offer after "not helpful"; "" for none


@dataclass(frozen=True)
class FeedbackClick:
    """A decoded feedback payload; `rest` is the encoded alternatives (n) or the choice (c)."""

    action: Action
    ref: str
    asker: str
    lang: str
    rest: str = ""

    def data(self) -> str:
        """The payload text (the inverse of `parse`)."""
        tail = f":{self.rest}" if self.rest else ""
        return f"f:{self.action}:{self.ref}:{self.asker}:{self.lang}{tail}"

    def choosing(self, intent_id: str, asker: str) -> FeedbackClick:
        """The click that chooses `intent_id` (or NONE_CHOSEN) instead, for `asker`."""
        return FeedbackClick("c", self.ref, asker, self.lang, intent_id)


def verdict_clicks(ticket: FeedbackTicket) -> tuple[FeedbackClick, FeedbackClick]:
    """The "helpful" and "not helpful" clicks of an answer."""
    return (FeedbackClick("y", ticket.ref, ticket.asker, ticket.lang),
            FeedbackClick("n", ticket.ref, ticket.asker, ticket.lang, ticket.alternatives))


def choices_instead(click: FeedbackClick, topics: list[Suggestion],
                    asker: str) -> list[tuple[str, FeedbackClick]]:
    """(label, click) of the buttons offered after "not helpful": the topics, then "none of
    these"; nothing without topics. `asker` is the person they are offered to."""
    if not topics:
        return []
    choices = [(topic.question, topic.intent) for topic in topics]
    choices.append((ui_text("none_of_these", click.lang), NONE_CHOSEN))
    return [(label, click.choosing(intent, asker)) for label, intent in choices]


def parse(data: str) -> FeedbackClick | None:
    """The click a payload describes, or None when it is not a feedback payload."""
    match = _PAYLOAD.fullmatch(data)
    if match is None:
        return None
    action: Action = "y" if match["action"] == "y" else "n" if match["action"] == "n" else "c"
    return FeedbackClick(action, match["ref"], match["asker"], match["lang"], match["rest"] or "")


class AlternativesCodec:
    """Writes and reads the topics of a "not helpful" payload for one knowledge base: each
    intent's position, behind a fingerprint of the intent list ("f00d.3.a"). Positions only
    move when the list of ids changes, not when an answer is edited."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._positions = {intent.id: index for index, intent in enumerate(kb.intents)}
        ids = " ".join(intent.id for intent in kb.intents)
        self._fingerprint = hashlib.sha256(ids.encode()).hexdigest()[:4]

    def encode(self, intent_ids: list[str]) -> str:
        """The encoded intents ("" for none)."""
        if not intent_ids:
            return ""
        return ".".join([self._fingerprint, *(_base36(self._positions[i]) for i in intent_ids)])

    def decode(self, encoded: str) -> list[str]:
        """The intent ids `encode` wrote, or [] when written for another knowledge base."""
        fingerprint, *positions = encoded.split(".")
        if fingerprint != self._fingerprint:
            return []
        indexes = [int(position, 36) for position in positions if position.isalnum()]
        return [self.kb.intents[index].id for index in indexes if index < len(self.kb.intents)]


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
        if not number:
            return digits
