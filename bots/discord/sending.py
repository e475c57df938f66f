"""Sending to Discord: messages, their order within a conversation, retries of a failed post."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import discord

from bots.service import Asker

if TYPE_CHECKING:
    from bots.discord.client import FaqClient
    from bots.discord.cog import FaqCog

logger = logging.getLogger(__name__)

# A post whose connection failed before Discord answered is made again, up to this many
# attempts in all: discord.py itself retries 429s and 5xx, and connection resets only on macOS
# and Windows.
SEND_ATTEMPTS = 3
SEND_RETRY_SECONDS = 0.5
# Discord's refusal of a second response to one interaction: proof that the first one arrived.
ALREADY_ACKNOWLEDGED = 40060

# No @everyone, @here, role or user pings, whatever text ends up in a message; replying to a
# mention may notify its author.
ALLOWED_MENTIONS = discord.AllowedMentions(everyone=False, users=False, roles=False,
                                           replied_user=True)


@dataclass(frozen=True)
class Outgoing:
    """One Discord message to send: text or an embed, and maybe buttons or menus."""

    content: str | None = None
    embed: discord.Embed | None = None
    view: discord.ui.View | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `send_message` / `send` / `reply`, mentions always restricted."""
        fields = {"content": self.content, "embed": self.embed, "view": self.view}
        return {name: value for name, value in fields.items() if value is not None} | {
            "allowed_mentions": ALLOWED_MENTIONS}


class ConversationTurns:
    """First come, first served within a conversation (one user in one channel).

    discord.py handles every interaction in a task of its own, and their posts race: without
    turns a user's second answer can overtake the first. Other users and channels go at once.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[int | None, int], asyncio.Lock] = {}
        self._waiting: Counter[tuple[int | None, int]] = Counter()

    @contextlib.asynccontextmanager
    async def turn(self, channel_id: int | None, user_id: int) -> AsyncIterator[None]:
        """Wait for the conversation's earlier replies to be sent, then hold the turn."""
        key = (channel_id, user_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:  # forget idle conversations: memory stays bounded
                del self._waiting[key], self._locks[key]


async def send_to_interaction(interaction: discord.Interaction, messages: list[Outgoing], *,
                              ephemeral: bool) -> None:
    """The first message answers the interaction; the rest are follow-ups. The user's earlier
    interactions in this channel are answered first."""
    async with _cog(interaction).turns.turn(interaction.channel_id, interaction.user.id):
        responded = interaction.response.is_done()
        for message in messages:
            kwargs = message.as_kwargs() | {"ephemeral": ephemeral}
            if responded:
                await _post(partial(interaction.followup.send, **kwargs))
            else:
                await _post(partial(interaction.response.send_message, **kwargs))
                responded = True


async def send_to_channel(source: discord.Message, messages: list[Outgoing]) -> None:
    """The first message replies to `source`; the rest follow in the same channel.

    Each carries a nonce made from `source` (a snowflake and an index: within Discord's 25
    characters), so that Discord keeps one copy of a post made twice (after a dropped
    connection, or for a message delivered twice).
    """
    first, *rest = messages
    await _post(partial(source.reply, **first.as_kwargs(), nonce=f"{source.id}:0"))
    for index, message in enumerate(rest, start=1):
        await _post(partial(source.channel.send, **message.as_kwargs(),
                            nonce=f"{source.id}:{index}"))


async def _post(post: Callable[[], Awaitable[object]]) -> None:
    """Make a post; if the connection fails before Discord answers, make it again.

    The failed attempt may have taken effect all the same. An interaction's response cannot be
    given twice: Discord refuses the second one (ALREADY_ACKNOWLEDGED), which proves the first
    arrived. A channel message is kept once by its nonce. Only a follow-up may then show twice.
    """
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            await post()
            return
        except discord.HTTPException as error:
            if attempt > 1 and error.code == ALREADY_ACKNOWLEDGED:
                return
            raise
        except (aiohttp.ClientError, OSError) as error:
            if attempt == SEND_ATTEMPTS:
                raise
            delay = SEND_RETRY_SECONDS * attempt
            logger.warning("Discord post failed (%s): attempt %d of %d in %.1f s",
                           type(error).__name__, attempt + 1, SEND_ATTEMPTS, delay)
            await asyncio.sleep(delay)


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _cog(interaction: discord.Interaction) -> FaqCog:
    return cast("FaqClient", interaction.client).faq_cog


def _interaction_asker(interaction: discord.Interaction) -> Asker:
    """Who used a command or component, for the question log (which stores pseudonyms)."""
    return Asker("discord", interaction.channel_id, interaction.user.id)


async def _quietly(sending: Any) -> None:
    # Used for error notices: if even the notice cannot be sent, logging is all that is left.
    try:
        await sending
    except discord.HTTPException as error:
        logger.warning("could not send an error notice: %s", error.status)
