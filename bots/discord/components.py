"""Discord buttons and select menus that survive restarts: their custom ids carry what a click
needs (the front door's payload behind "faqbot:"), and a click goes straight to the front door.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, cast

import discord

from bots import feedback
from bots.discord.parsing import arrival
from bots.frontdoor.door import FrontDoor
from bots.frontdoor.replies import (
    CHOICE_PATTERN,
    LANG_PATTERN,
    Choice,
    FeedbackControl,
    is_feedback,
    parse_choice,
)
from bots.frontdoor.texts import ui_text

PREFIX = "faqbot:"
BUTTON_LABEL_LIMIT = 80
SELECT_OPTION_LIMIT = 100
SELECT_OPTIONS_PER_MENU = 25
MENUS_PER_MESSAGE = 5
# A choice's payload; "none:" is how "none of these" was written before the payloads of both
# platforms became one, still found on older messages.
_CHOICE = rf"(?:(?P<payload>{CHOICE_PATTERN})|none:(?P<legacy_lang>{LANG_PATTERN}))"


class _Client(Protocol):
    door: FrontDoor


async def click(interaction: discord.Interaction, payload: str) -> None:
    """A button or menu choice, through the front door; its reply is as private as the clicked
    message."""
    from bots.discord.replying import InteractionReplies  # replies are made of these components

    ephemeral = bool(interaction.message and interaction.message.flags.ephemeral)
    door = cast(_Client, interaction.client).door
    replies = InteractionReplies(interaction, ephemeral=ephemeral,
                                 lang=door.language(str(interaction.locale)))
    await replies.reporting_failures(door.click(arrival(interaction), payload, replies))


class ChoiceButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PREFIX + _CHOICE):
    """A button that answers one intent, or "none of these"."""

    def __init__(self, choice: Choice,
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(discord.ui.Button(label=shorten(choice.label or "?", BUTTON_LABEL_LIMIT),
                                           style=style, custom_id=PREFIX + choice.payload))
        self.payload = choice.payload

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> ChoiceButton:
        choice = parse_choice(match["payload"]) if match["payload"] else None
        return cls(choice or Choice("", match["legacy_lang"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await click(interaction, self.payload)


class TopicMenu(discord.ui.DynamicItem[discord.ui.Select[Any]],
                template=rf"faqbot:t:(?P<lang>{LANG_PATTERN}):(?P<page>\d+)"):
    """A select menu of up to 25 topics (their intent ids as values); choosing one answers it."""

    def __init__(self, lang: str, page: int, topics: tuple[Choice, ...] = ()) -> None:
        options = [discord.SelectOption(label=shorten(topic.label, SELECT_OPTION_LIMIT),
                                        value=topic.intent or "") for topic in topics]
        super().__init__(discord.ui.Select(custom_id=f"faqbot:t:{lang}:{page}", options=options,
                                           placeholder=ui_text("topics_title", lang)))
        self.lang = lang

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> TopicMenu:
        return cls(match["lang"], int(match["page"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        chosen = self.item.values[0] if self.item.values else ""
        await click(interaction, Choice("", self.lang, chosen).payload if chosen else "")


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button[Any]],
                     template=PREFIX + feedback.PATTERN):
    """A feedback button: "helpful", "not helpful", or a topic chosen instead."""

    def __init__(self, control: FeedbackControl,
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(discord.ui.Button(label=shorten(control.label, BUTTON_LABEL_LIMIT),
                                           style=style, custom_id=PREFIX + control.payload))
        self.payload = control.payload

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> FeedbackButton:
        parsed = feedback.parse(match.string.removeprefix(PREFIX))
        assert parsed is not None  # the template is the payload's pattern
        return cls(FeedbackControl("?", parsed))

    async def callback(self, interaction: discord.Interaction) -> None:
        await click(interaction, self.payload)


def choice_buttons(choices: tuple[Choice, ...], style: discord.ButtonStyle,
                   view: discord.ui.View | None = None) -> discord.ui.View:
    """One button per choice, added to `view` (a new one by default)."""
    view = view or discord.ui.View(timeout=None)
    for choice in choices:
        view.add_item(ChoiceButton(choice, style))
    return view


def feedback_buttons(controls: tuple[FeedbackControl, ...], row: int | None,
                     view: discord.ui.View | None = None,
                     style: discord.ButtonStyle = discord.ButtonStyle.secondary,
                     ) -> discord.ui.View:
    """Feedback buttons (on `row`, or one a row when None), added to `view` (a new one by
    default)."""
    view = view or discord.ui.View(timeout=None)
    for control in controls:
        button = FeedbackButton(control, style)
        button.row = row
        view.add_item(button)
    return view


def without_feedback(view: discord.ui.View) -> discord.ui.View:
    """`view` without its feedback buttons."""
    for item in list(view.children):
        custom_id = getattr(item, "custom_id", None)
        if isinstance(custom_id, str) and is_feedback(custom_id.removeprefix(PREFIX)):
            view.remove_item(item)
    return view


def topic_menus(topics: tuple[Choice, ...], lang: str) -> discord.ui.View:
    """Topics as select menus of 25 options each (a message holds five)."""
    view = discord.ui.View(timeout=None)
    pages = [topics[start:start + SELECT_OPTIONS_PER_MENU]
             for start in range(0, len(topics), SELECT_OPTIONS_PER_MENU)]
    for page, chunk in enumerate(pages[:MENUS_PER_MESSAGE]):
        view.add_item(TopicMenu(lang, page, chunk))
    return view


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
