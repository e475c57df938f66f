"""Reading Discord events for the front door: who asked, where, in which conversation, and the
question a mention or direct message holds."""

from __future__ import annotations

import re

import discord

from bots.frontdoor.door import Arrival
from bots.service import Asker
from core.text import guess_language

# User, role and channel mentions are markup, not words of the question.
_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>")
_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)


def arrival(interaction: discord.Interaction) -> Arrival:
    """The front door's view of an interaction: the server is the allow-list's place, one user
    in one channel a conversation."""
    asker = Asker("discord", interaction.channel_id, interaction.user.id, interaction.id)
    return Arrival(asker, interaction.guild_id, (interaction.channel_id, interaction.user.id),
                   str(interaction.locale))


def message_arrival(message: discord.Message) -> Arrival:
    """The same for a mention or a direct message (its language guessed from its text)."""
    asker = Asker("discord", message.channel.id, message.author.id, message.id)
    return Arrival(asker, message.guild.id if message.guild else None,
                   (message.channel.id, message.author.id), guess_language(message.content))


def is_addressed(message: discord.Message, me: discord.ClientUser) -> bool:
    """A user's direct message, or a user's message in a server that mentions `me`."""
    if message.author.bot or message.type not in _USER_MESSAGES:
        return False
    if message.guild is None:
        return True
    return any(user.id == me.id for user in message.mentions)


def question_text(message: discord.Message) -> str:
    """The message's text without its mentions."""
    return _MENTION.sub(" ", message.content).strip()
