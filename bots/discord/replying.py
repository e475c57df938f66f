"""Replying on Discord: a ReplyLayout as messages (an embed for a curated answer, text with
buttons or select menus for the rest), sent in order with the front door's retry policy.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import discord

from bots.discord.components import (
    choice_buttons,
    feedback_buttons,
    shorten,
    topic_menus,
    without_feedback,
)
from bots.frontdoor.door import FeedbackOutcome
from bots.frontdoor.replies import FeedbackControl, ReplyLayout, split_message
from bots.frontdoor.retry import Retry, RetryPolicy
from bots.frontdoor.texts import ui_text

logger = logging.getLogger(__name__)

# Discord's limits (https://discord.com/developers/docs/resources/message).
CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
# A message holds 25 components; keep one place free for "none of these".
MAX_ANSWER_BUTTONS = 24
BUTTONS_PER_ROW = 5
# Under an answer with feedback buttons, related buttons fill at most four rows of five.
MAX_RELATED_WITH_FEEDBACK = 20
# A post whose connection failed before Discord answered is made again, up to this many
# attempts in all: discord.py itself retries 429s and 5xx, and connection resets only on macOS
# and Windows.
SEND_ATTEMPTS = 3
SENDS = RetryPolicy("Discord", attempts=SEND_ATTEMPTS)
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


def render(layout: ReplyLayout) -> list[Outgoing]:
    """Discord messages for a reply: an embed for an answer (with feedback buttons when it has
    them), text and components otherwise."""
    if layout.kind == "answer":
        return _render_answer(layout)
    view = None
    if layout.kind == "clarify":
        view = choice_buttons(layout.choices[:MAX_ANSWER_BUTTONS + 1], discord.ButtonStyle.primary)
    elif layout.choices:  # fallback and help list the topics
        view = topic_menus(layout.answers, layout.lang)
    pieces = split_message(layout.text, CONTENT_LIMIT)
    return [Outgoing(content=piece) for piece in pieces[:-1]] + [
        Outgoing(content=pieces[-1], view=view)]


def _render_answer(layout: ReplyLayout) -> list[Outgoing]:
    pieces = split_message(layout.text, EMBED_DESCRIPTION_LIMIT)
    embeds = [discord.Embed(description=piece) for piece in pieces]
    embeds[0].title = shorten(layout.title or "", EMBED_TITLE_LIMIT)
    limit = MAX_RELATED_WITH_FEEDBACK if layout.feedback else MAX_ANSWER_BUTTONS
    related = layout.answers[:limit]
    view = None
    if related:
        embeds[-1].set_footer(text=layout.related_title)
        view = choice_buttons(related, discord.ButtonStyle.secondary)
    if layout.feedback:
        view = feedback_buttons(layout.feedback, -(-len(related) // BUTTONS_PER_ROW), view)
    return [Outgoing(embed=embed) for embed in embeds[:-1]] + [
        Outgoing(embed=embeds[-1], view=view)]


class InteractionReplies:
    """The front door's way back to a slash command, a button or a menu: the first message
    answers the interaction, the rest are follow-ups; notices only the user sees."""

    tells_refusal = True
    private_buttons = True

    def __init__(self, interaction: discord.Interaction, *, ephemeral: bool,
                 lang: str) -> None:
        self.interaction = interaction
        self.ephemeral = ephemeral
        self.lang = lang  # of an error notice

    async def send(self, layout: ReplyLayout) -> None:
        await self._send(render(layout), ephemeral=self.ephemeral)

    async def notice(self, text: str | None) -> None:
        if text:
            await self._send([Outgoing(content=text)], ephemeral=True)

    async def replace_feedback(self, instead: tuple[FeedbackControl, ...]) -> None:
        """Answer the interaction by editing its message (type 7): the feedback buttons
        replaced by `instead`, on a row below the rest, every other component kept."""
        if self.interaction.message is None:
            return
        view = without_feedback(discord.ui.View.from_message(self.interaction.message,
                                                             timeout=None))
        next_row = max((item.row or 0 for item in view.children), default=-1) + 1
        feedback_buttons(instead, next_row, view, discord.ButtonStyle.primary)
        await _post(partial(self.interaction.response.edit_message, view=view))

    async def feedback_recorded(self, outcome: FeedbackOutcome) -> None:
        """The asker's first click edits the message and thanks privately; anyone else is
        thanked privately, with the topics to choose instead after "not helpful", and the
        message stays as it is for everyone."""
        if outcome.mine and outcome.first and self.interaction.message is not None:
            await self.replace_feedback(outcome.instead)
            await self.notice(outcome.thanks)
            return
        view = (feedback_buttons(outcome.instead, None, style=discord.ButtonStyle.primary)
                if outcome.instead else None)
        await self._send([Outgoing(content=outcome.thanks, view=view)], ephemeral=True)

    async def reporting_failures(self, handling: Awaitable[None]) -> None:
        """Await `handling`; a failure is logged with its traceback and the user told,
        privately: the bot keeps serving."""
        try:
            await handling
        except Exception as error:
            await self.report_failure(error)

    async def report_failure(self, error: Exception) -> None:
        """Log the failure with its traceback and send the user a private error notice."""
        logger.error("interaction %s failed", self.interaction.id, exc_info=error)
        await _quietly(self.notice(ui_text("error", self.lang)))

    async def _send(self, messages: list[Outgoing], *, ephemeral: bool) -> None:
        responded = self.interaction.response.is_done()
        for message in messages:
            kwargs = message.as_kwargs() | {"ephemeral": ephemeral}
            if responded:
                await _post(partial(self.interaction.followup.send, **kwargs))
            else:
                await _post(partial(self.interaction.response.send_message, **kwargs))
                responded = True


class ChannelReplies:
    """The front door's way back to a mention or a direct message: the first message replies to
    it, the rest follow in the same channel. Such messages are never clicked, so feedback never
    comes back here."""

    tells_refusal = False  # a mention in a refused server gets nothing
    private_buttons = False

    def __init__(self, source: discord.Message) -> None:
        self.source = source

    async def send(self, layout: ReplyLayout) -> None:
        """Each message carries a nonce made from the source (a snowflake and an index: within
        Discord's 25 characters), so that Discord keeps one copy of a post made twice (after a
        dropped connection, or for a message delivered twice)."""
        first, *rest = render(layout)
        source = self.source
        await _post(partial(source.reply, **first.as_kwargs(), nonce=f"{source.id}:0"))
        for index, message in enumerate(rest, start=1):
            await _post(partial(source.channel.send, **message.as_kwargs(),
                                nonce=f"{source.id}:{index}"))

    async def notice(self, text: str | None) -> None:
        if text:
            await self.source.reply(**Outgoing(content=text).as_kwargs())

    async def replace_feedback(self, instead: tuple[FeedbackControl, ...]) -> None:
        """Nothing to replace: no click comes from a message."""

    async def feedback_recorded(self, outcome: FeedbackOutcome) -> None:
        """Nothing to thank: no click comes from a message."""


def _judge(error: Exception) -> Retry | None:
    # discord.py retries 429s and 5xx itself; a connection that failed before Discord answered
    # is ours to retry.
    return Retry() if isinstance(error, aiohttp.ClientError | OSError) else None


async def _post(post: Callable[[], Awaitable[object]]) -> None:
    """Make a post with the retry policy. A failed attempt may have taken effect all the same.
    An interaction's response cannot be given twice: Discord refuses the second one
    (ALREADY_ACKNOWLEDGED), which proves the first arrived. A channel message is kept once by
    its nonce. Only a follow-up may then show twice."""
    attempts = 0

    async def attempt() -> None:
        nonlocal attempts
        attempts += 1
        try:
            await post()
        except discord.HTTPException as error:
            if attempts == 1 or error.code != ALREADY_ACKNOWLEDGED:
                raise

    await SENDS.run(attempt, _judge, "post")


async def _quietly(sending: Awaitable[object]) -> None:
    # Used for error notices: if even the notice cannot be sent, logging is all that is left.
    try:
        await sending
    except discord.HTTPException as error:
        logger.warning("could not send an error notice: %s", error.status)
