"""The Discord commands and messages: each parses its event into the front door.

Slash commands (/ask, /faq) and their autocomplete, and mentions and direct messages; buttons
and menus go to the front door from bots/discord/components.py.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bots.discord.components import shorten
from bots.discord.parsing import arrival, is_addressed, message_arrival, question_text
from bots.discord.replying import ChannelReplies, InteractionReplies, Outgoing, _quietly
from bots.frontdoor.door import FrontDoor
from bots.frontdoor.texts import ui_text
from core.text import guess_language

logger = logging.getLogger(__name__)

AUTOCOMPLETE_CHOICES = 25
CHOICE_LIMIT = 100


class FaqCog(commands.Cog):
    """The slash commands and message handling; every decision is the front door's."""

    def __init__(self, door: FrontDoor) -> None:
        self.door = door

    @app_commands.command(name=locale_str("ask"),
                          description=locale_str("Ask the FAQ a question"))
    @app_commands.rename(private=locale_str("private"))
    @app_commands.describe(question=locale_str("Your question"),
                           private=locale_str("Show the answer to you only"))
    async def ask(self, interaction: discord.Interaction, question: str,
                  private: bool = False) -> None:
        """/ask: the curated answer, in the question's language else the user's locale."""
        await self.door.ask(arrival(interaction), question, self._replies(interaction, private))

    @ask.autocomplete("question")
    async def suggest_questions(self, interaction: discord.Interaction,
                                current: str) -> list[app_commands.Choice[str]]:
        """Up to 25 FAQ questions ranked against what the user has typed so far."""
        lang = guess_language(current) or str(interaction.locale)
        found = self.door.search(arrival(interaction), current, lang, AUTOCOMPLETE_CHOICES)
        return [app_commands.Choice(name=shorten(s.question, CHOICE_LIMIT),
                                    value=shorten(s.question, CHOICE_LIMIT))
                for s in found or []]

    @app_commands.command(name=locale_str("faq"),
                          description=locale_str("Browse the questions I can answer"))
    @app_commands.rename(private=locale_str("private"))
    @app_commands.describe(private=locale_str("Show the answer to you only"))
    async def faq_topics(self, interaction: discord.Interaction, private: bool = False) -> None:
        """/faq: the topics as a select menu; choosing one answers it."""
        await self.door.show_topics(arrival(interaction), "topics_title",
                                    self._replies(interaction, private))

    async def cog_app_command_error(self, interaction: discord.Interaction,
                                    error: app_commands.AppCommandError) -> None:
        """Log a failed command and tell the user, privately; the bot keeps serving."""
        await self._replies(interaction, True).report_failure(error)

    async def answer_message(self, message: discord.Message, me: discord.ClientUser) -> None:
        """Reply to a direct message or a message that mentions `me`; ignore every other one."""
        if not is_addressed(message, me):
            return
        try:
            await self.door.ask(message_arrival(message), question_text(message),
                                ChannelReplies(message))
        except Exception:
            logger.exception("failed to answer message %s", message.id)
            notice = Outgoing(content=ui_text("error", self.door.language(None)))
            await _quietly(message.reply(**notice.as_kwargs()))

    def _replies(self, interaction: discord.Interaction, private: bool) -> InteractionReplies:
        return InteractionReplies(interaction, ephemeral=private,
                                  lang=self.door.language(str(interaction.locale)))
