"""Discord buttons and select menus that survive restarts: their custom ids carry what a click
needs.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord

from bots import feedback
from bots.common import ui_text
from bots.discord.sending import _cog, _interaction_asker, shorten
from bots.feedback import FeedbackClick, FeedbackTicket
from core import Suggestion

logger = logging.getLogger(__name__)

BUTTON_LABEL_LIMIT = 80
SELECT_OPTION_LIMIT = 100
SELECT_OPTIONS_PER_MENU = 25
MENUS_PER_MESSAGE = 5
# A message holds 25 components; keep one place free for "none of these".
MAX_ANSWER_BUTTONS = 24

_INTENT = r"[a-z][a-z0-9_]*"
_LANG = r"[a-z]{2}"

class AnswerButton(discord.ui.DynamicItem[discord.ui.Button[Any]],
                   template=rf"faqbot:a:(?P<intent>{_INTENT}):(?P<lang>{_LANG})"):
    """A button that answers one intent; its custom id survives restarts."""

    def __init__(self, intent_id: str, lang: str, label: str = "?",
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(discord.ui.Button(label=shorten(label, BUTTON_LABEL_LIMIT), style=style,
                                           custom_id=f"faqbot:a:{intent_id}:{lang}"))
        self.intent_id = intent_id
        self.lang = lang

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction,
                             item: discord.ui.Item[Any], match: re.Match[str], /) -> AnswerButton:
        return cls(match["intent"], match["lang"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = _cog(interaction)
        asker = _interaction_asker(interaction)
        await cog.answer_click(interaction,
                               lambda: cog.faq.choose(self.intent_id, self.lang, asker=asker),
                               self.lang)


class NoneOfTheseButton(discord.ui.DynamicItem[discord.ui.Button[Any]],
                        template=rf"faqbot:none:(?P<lang>{_LANG})"):
    """The "none of these" button under a clarification."""

    def __init__(self, lang: str) -> None:
        super().__init__(discord.ui.Button(label=ui_text("none_of_these", lang),
                                           style=discord.ButtonStyle.secondary,
                                           custom_id=f"faqbot:none:{lang}"))
        self.lang = lang

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> NoneOfTheseButton:
        return cls(match["lang"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = _cog(interaction)
        asker = _interaction_asker(interaction)
        await cog.answer_click(interaction,
                               lambda: cog.faq.none_of_these(self.lang, asker=asker), self.lang)


class TopicMenu(discord.ui.DynamicItem[discord.ui.Select[Any]],
                template=rf"faqbot:t:(?P<lang>{_LANG}):(?P<page>\d+)"):
    """A select menu of up to 25 topics; choosing one answers it."""

    def __init__(self, lang: str, page: int, topics: list[Suggestion] | None = None) -> None:
        options = [discord.SelectOption(label=shorten(topic.question, SELECT_OPTION_LIMIT),
                                        value=topic.intent) for topic in topics or []]
        super().__init__(discord.ui.Select(custom_id=f"faqbot:t:{lang}:{page}", options=options,
                                           placeholder=ui_text("topics_title", lang)))
        self.lang = lang

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> TopicMenu:
        return cls(match["lang"], int(match["page"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = _cog(interaction)
        chosen = self.item.values[0] if self.item.values else ""
        asker = _interaction_asker(interaction)
        await cog.answer_click(interaction,
                               lambda: cog.faq.choose(chosen, self.lang, asker=asker), self.lang)


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button[Any]],
                     template="faqbot:" + feedback.PATTERN):
    """A feedback button: "helpful", "not helpful", or a topic chosen instead."""

    def __init__(self, click: FeedbackClick, label: str = "?",
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(discord.ui.Button(label=shorten(label, BUTTON_LABEL_LIMIT), style=style,
                                           custom_id=f"faqbot:{click.data()}"))
        self.click = click

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> FeedbackButton:
        click = feedback.parse(match.string.removeprefix("faqbot:"))
        assert click is not None  # the template is the payload's pattern
        return cls(click)

    async def callback(self, interaction: discord.Interaction) -> None:
        await _cog(interaction).on_feedback(interaction, self.click)


def add_feedback_buttons(view: discord.ui.View, ticket: FeedbackTicket, row: int) -> None:
    """"Helpful" and "not helpful" on a row of their own."""
    helpful, not_helpful = feedback.verdict_clicks(ticket)
    for click, label in ((helpful, "helpful"), (not_helpful, "not_helpful")):
        button = FeedbackButton(click, ui_text(label, ticket.lang))
        button.row = row
        view.add_item(button)


def choice_buttons(click: FeedbackClick, topics: list[Suggestion],
                   asker: str) -> list[FeedbackButton]:
    """The buttons offered after "not helpful" (feedback.choices_instead)."""
    return [FeedbackButton(choice, label, discord.ButtonStyle.primary)
            for label, choice in feedback.choices_instead(click, topics, asker)]


def _view_of(items: list[FeedbackButton]) -> discord.ui.View | None:
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


def _is_feedback(item: discord.ui.Item[Any]) -> bool:
    custom_id = getattr(item, "custom_id", None)
    return isinstance(custom_id, str) and feedback.parse(
        custom_id.removeprefix("faqbot:")) is not None


def answer_buttons(suggestions: list[Suggestion], lang: str,
                   style: discord.ButtonStyle) -> discord.ui.View:
    """A row of buttons, one per suggested intent."""
    view = discord.ui.View(timeout=None)
    for suggestion in suggestions[:MAX_ANSWER_BUTTONS]:
        view.add_item(AnswerButton(suggestion.intent, lang, suggestion.question, style))
    return view


def topic_menus(topics: list[Suggestion], lang: str) -> discord.ui.View:
    """Topics as select menus of 25 options each (a message holds five)."""
    view = discord.ui.View(timeout=None)
    pages = [topics[start:start + SELECT_OPTIONS_PER_MENU]
             for start in range(0, len(topics), SELECT_OPTIONS_PER_MENU)]
    for page, chunk in enumerate(pages[:MENUS_PER_MESSAGE]):
        view.add_item(TopicMenu(lang, page, chunk))
    return view
