"""A neutral description of a reply, which every platform renders in its own way.

A `ReplyLayout` holds the text (cut into pieces by `split_message` at each platform's limit),
a title, the choices shown as buttons or menus, and the feedback buttons under a curated answer.
Every button carries a short payload back when clicked, in one format (the feedback payloads
of bots/feedback.py, and):

- `a:<intent>:<lang>`: answer this intent (a suggestion, a clarification's candidate);
- `n:<lang>`: "none of these" under a clarification.

Telegram sends the payload as callback_data (64 bytes at most); Discord as custom_id, behind
"faqbot:". The payload holds everything a click needs, so buttons keep working after a restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bots import feedback
from bots.feedback import FeedbackClick, FeedbackTicket
from bots.frontdoor.texts import ui_text
from core import Reply, Suggestion
from core.bot import ReplyKind

INTENT_PATTERN = r"[a-z][a-z0-9_]*"
LANG_PATTERN = r"[a-z]{2}"
ANSWER_PATTERN = rf"a:(?P<intent>{INTENT_PATTERN}):(?P<lang>{LANG_PATTERN})"
NONE_PATTERN = rf"n:(?P<lang>{LANG_PATTERN})"
# Either payload, without named groups (for a platform's own templates).
CHOICE_PATTERN = rf"a:{INTENT_PATTERN}:{LANG_PATTERN}|n:{LANG_PATTERN}"
_ANSWER = re.compile(ANSWER_PATTERN)
_NONE = re.compile(NONE_PATTERN)


@dataclass(frozen=True)
class Choice:
    """A button that answers an intent, or "none of these" (`intent` None)."""

    label: str
    lang: str
    intent: str | None = None

    @property
    def payload(self) -> str:
        return f"a:{self.intent}:{self.lang}" if self.intent else f"n:{self.lang}"


@dataclass(frozen=True)
class FeedbackControl:
    """A feedback button: its label and the click it carries."""

    label: str
    click: FeedbackClick

    @property
    def payload(self) -> str:
        return self.click.data()


@dataclass(frozen=True)
class ReplyLayout:
    """What a reply shows, whatever the platform."""

    kind: ReplyKind
    lang: str
    text: str
    title: str | None = None  # the question a curated answer answers
    related_title: str | None = None  # above an answer's suggestions
    choices: tuple[Choice, ...] = ()
    feedback: tuple[FeedbackControl, ...] = ()

    @property
    def answers(self) -> tuple[Choice, ...]:
        """The choices that answer an intent (without "none of these")."""
        return tuple(choice for choice in self.choices if choice.intent)


def layout(reply: Reply, ticket: FeedbackTicket | None = None,
           title: str | None = None) -> ReplyLayout:
    """The layout of `reply`: its suggestions as choices ("none of these" after a
    clarification's), and under a curated answer with a `ticket`, the feedback buttons."""
    choices = tuple(Choice(s.question, reply.lang, s.intent) for s in reply.suggestions)
    if reply.kind == "clarify":
        choices += (Choice(ui_text("none_of_these", reply.lang), reply.lang),)
    related = ui_text("related", reply.lang) if reply.kind == "answer" and choices else None
    controls: tuple[FeedbackControl, ...] = ()
    if ticket is not None and reply.kind == "answer":
        helpful, not_helpful = feedback.verdict_clicks(ticket)
        controls = (FeedbackControl(ui_text("helpful", ticket.lang), helpful),
                    FeedbackControl(ui_text("not_helpful", ticket.lang), not_helpful))
    return ReplyLayout(reply.kind, reply.lang, reply.answer, title, related, choices, controls)


def topics_layout(intro: str, topics: list[Suggestion], lang: str) -> ReplyLayout:
    """An introduction followed by one choice per topic."""
    return ReplyLayout("smalltalk", lang, intro,
                       choices=tuple(Choice(t.question, lang, t.intent) for t in topics))


def text_layout(text: str, lang: str) -> ReplyLayout:
    """A plain text (a notice), without buttons."""
    return ReplyLayout("smalltalk", lang, text)


def choices_instead(click: FeedbackClick, topics: list[Suggestion],
                    asker: str) -> tuple[FeedbackControl, ...]:
    """The buttons offered after "not helpful" (feedback.choices_instead)."""
    return tuple(FeedbackControl(label, choice)
                 for label, choice in feedback.choices_instead(click, topics, asker))


def parse_choice(payload: str) -> Choice | None:
    """The choice a payload names (its label unknown: ""), or None for another payload."""
    if match := _ANSWER.fullmatch(payload):
        return Choice("", match["lang"], match["intent"])
    if match := _NONE.fullmatch(payload):
        return Choice("", match["lang"])
    return None


def is_feedback(payload: object) -> bool:
    """Whether a button's payload is a feedback click's."""
    return isinstance(payload, str) and feedback.parse(payload) is not None


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
