"""The Discord commands and messages: slash commands, autocomplete, clicks, mentions, direct
messages, and how a Reply is rendered for them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bots.common import AccessPolicy, RateLimiter, split_message, ui_text
from bots.discord.components import (
    FeedbackButton,
    NoneOfTheseButton,
    _is_feedback,
    _view_of,
    add_feedback_buttons,
    answer_buttons,
    choice_buttons,
    topic_menus,
)
from bots.discord.sending import (
    ConversationTurns,
    Outgoing,
    _interaction_asker,
    _post,
    _quietly,
    send_to_channel,
    send_to_interaction,
    shorten,
)
from bots.feedback import FeedbackClick, FeedbackTicket
from bots.service import Asker, FAQService
from core import FAQBot, Reply, Settings, UnknownIntentError
from core.text import guess_language

logger = logging.getLogger(__name__)

# Discord's limits (https://discord.com/developers/docs/resources/message).
CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
BUTTONS_PER_ROW = 5
# Under an answer with feedback buttons, related buttons fill at most four rows of five.
MAX_RELATED_WITH_FEEDBACK = 20

AUTOCOMPLETE_CHOICES = 25
CHOICE_LIMIT = 100

# The rate limiter forgets idle users this often (in checks), so memory stays bounded.
SWEEP_EVERY = 1000

# User, role and channel mentions are markup, not words of the question.
_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>")
_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)

class FaqCog(commands.Cog):
    """The slash commands and message handling; every decision about meaning is FAQBot's."""

    def __init__(self, bot: FAQBot | FAQService, settings: Settings) -> None:
        self.faq = FAQService.of(bot)
        self.limiter = RateLimiter(settings.rate_limit_messages, settings.rate_limit_seconds)
        self.access = AccessPolicy(settings.allowed_guilds)
        self.turns = ConversationTurns()
        self._checks = 0
        self.feedback = settings.feedback

    @app_commands.command(name=locale_str("ask"),
                          description=locale_str("Ask the FAQ a question"))
    @app_commands.rename(private=locale_str("private"))
    @app_commands.describe(question=locale_str("Your question"),
                           private=locale_str("Show the answer to you only"))
    async def ask(self, interaction: discord.Interaction, question: str,
                  private: bool = False) -> None:
        """/ask: the curated answer, in the question's language else the user's locale."""
        if not await self.admit(interaction):
            return
        reply, ticket = self.faq.answer_with_feedback(
            question, lang_hint=str(interaction.locale), asker=_interaction_asker(interaction),
            feedback=self.feedback)
        await send_to_interaction(interaction, self.render(reply, ticket), ephemeral=private)

    @ask.autocomplete("question")
    async def suggest_questions(self, interaction: discord.Interaction,
                                current: str) -> list[app_commands.Choice[str]]:
        """Up to 25 FAQ questions ranked against what the user has typed so far."""
        if self._refused_server(interaction.guild_id):
            return []
        lang = guess_language(current) or str(interaction.locale)
        suggestions = self.faq.suggest(current, self.faq.language(lang), AUTOCOMPLETE_CHOICES)
        return [app_commands.Choice(name=shorten(s.question, CHOICE_LIMIT),
                                    value=shorten(s.question, CHOICE_LIMIT))
                for s in suggestions]

    @app_commands.command(name=locale_str("faq"),
                          description=locale_str("Browse the questions I can answer"))
    @app_commands.rename(private=locale_str("private"))
    @app_commands.describe(private=locale_str("Show the answer to you only"))
    async def faq_topics(self, interaction: discord.Interaction, private: bool = False) -> None:
        """/faq: the topics as a select menu; choosing one answers it."""
        if not await self.admit(interaction):
            return
        lang = self.faq.language(str(interaction.locale))
        message = Outgoing(content=ui_text("topics_title", lang),
                           view=topic_menus(self.faq.topics(lang), lang))
        await send_to_interaction(interaction, [message], ephemeral=private)

    async def cog_app_command_error(self, interaction: discord.Interaction,
                                    error: app_commands.AppCommandError) -> None:
        """Log a failed command and tell the user, privately; the bot keeps serving."""
        await self.report_failure(interaction, error)

    async def answer_click(self, interaction: discord.Interaction,
                           reply_to_send: Callable[[], Reply], lang: str) -> None:
        """A button or menu choice: its reply, as private as the message that was clicked."""
        ephemeral = bool(interaction.message and interaction.message.flags.ephemeral)
        try:
            if await self.admit(interaction):
                await self.respond(interaction, reply_to_send(), ephemeral=ephemeral)
        except UnknownIntentError:  # the knowledge base changed since the button was sent
            await self.notify(interaction, "stale_button", lang)
        except Exception as error:
            await self.report_failure(interaction, error)

    async def answer_message(self, message: discord.Message, me: discord.ClientUser) -> None:
        """Reply to a direct message or a message that mentions `me`; ignore every other one."""
        if not self._addressed(message, me):
            return
        if message.guild is not None and self._refused_server(message.guild.id):
            return
        async with self.turns.turn(message.channel.id, message.author.id):
            try:
                verdict = self._rate(message.author.id)
                if verdict == "notify":
                    lang = self.faq.language(guess_language(message.content))
                    notice = Outgoing(content=ui_text("rate_limited", lang))
                    await message.reply(**notice.as_kwargs())
                if verdict == "allow":
                    text = _MENTION.sub(" ", message.content).strip()
                    asker = Asker("discord", message.channel.id, message.author.id)
                    reply, ticket = self.faq.answer_with_feedback(text, asker=asker,
                                                                  feedback=self.feedback)
                    await send_to_channel(message, self.render(reply, ticket))
            except Exception:
                logger.exception("failed to answer message %s", message.id)
                notice = Outgoing(content=ui_text("error", self.faq.language(None)))
                await _quietly(message.reply(**notice.as_kwargs()))

    async def admit(self, interaction: discord.Interaction) -> bool:
        """Apply the server allow-list and the per-user rate limit; notify when refusing."""
        lang = self.faq.language(str(interaction.locale))
        if self._refused_server(interaction.guild_id):
            await self.notify(interaction, "not_here", lang)
            return False
        verdict = self._rate(interaction.user.id)
        if verdict == "notify":
            await self.notify(interaction, "rate_limited", lang)
        return verdict == "allow"

    async def notify(self, interaction: discord.Interaction, text_key: str, lang: str) -> None:
        """A short interface notice only the user sees."""
        notice = Outgoing(content=ui_text(text_key, lang))
        await send_to_interaction(interaction, [notice], ephemeral=True)

    async def respond(self, interaction: discord.Interaction, reply: Reply, *,
                      ephemeral: bool) -> None:
        """Send `reply` as the interaction's response (and follow-ups if it is long)."""
        await send_to_interaction(interaction, self.render(reply), ephemeral=ephemeral)

    def render(self, reply: Reply, ticket: FeedbackTicket | None = None) -> list[Outgoing]:
        """Discord messages for a reply: an embed for an answer (with feedback buttons when
        there is a `ticket`), text and components otherwise."""
        if reply.kind == "answer":
            return self._render_answer(reply, ticket)
        if reply.kind == "clarify":
            view = answer_buttons(reply.suggestions, reply.lang, discord.ButtonStyle.primary)
            view.add_item(NoneOfTheseButton(reply.lang))
        elif reply.suggestions:  # fallback and help list the topics
            view = topic_menus(reply.suggestions, reply.lang)
        else:
            view = None
        pieces = split_message(reply.answer, CONTENT_LIMIT)
        return [Outgoing(content=piece) for piece in pieces[:-1]] + [
            Outgoing(content=pieces[-1], view=view)]

    def _render_answer(self, reply: Reply, ticket: FeedbackTicket | None) -> list[Outgoing]:
        intent = self.faq.kb.intent(reply.intent or "")
        title = intent.question[reply.lang] if intent else reply.question
        pieces = split_message(reply.answer, EMBED_DESCRIPTION_LIMIT)
        embeds = [discord.Embed(description=piece) for piece in pieces]
        embeds[0].title = shorten(title, EMBED_TITLE_LIMIT)
        related = reply.suggestions[:MAX_RELATED_WITH_FEEDBACK] if ticket else reply.suggestions
        view = None
        if related:
            embeds[-1].set_footer(text=ui_text("related", reply.lang))
            view = answer_buttons(related, reply.lang, discord.ButtonStyle.secondary)
        if ticket is not None:
            view = view or discord.ui.View(timeout=None)
            add_feedback_buttons(view, ticket, row=-(-len(related) // BUTTONS_PER_ROW))
        return [Outgoing(embed=embed) for embed in embeds[:-1]] + [
            Outgoing(embed=embeds[-1], view=view)]

    async def on_feedback(self, interaction: discord.Interaction, click: FeedbackClick) -> None:
        """A feedback click, acknowledged at once. The asker's first verdict edits the message
        (type 7: the feedback buttons go, or the topics to choose instead take their place)
        and thanks privately; another user's is thanked privately, with those topics after
        "not helpful", and the message stays as it is for everyone."""
        asker = _interaction_asker(interaction)
        try:
            if not await self.admit(interaction):
                return
            if click.action == "c":
                await self._choose_instead(interaction, click, asker)
                return
            mine = click.asker == self.faq.asker_tag(click.ref, asker)
            first = self.faq.record_feedback(click, asker)
            topics = self.faq.alternatives(click) if click.action == "n" and first else []
            thanks = ui_text("feedback_alternatives" if topics else "feedback_thanks", click.lang)
            if mine and first and interaction.message is not None:
                await self._edit_feedback_buttons(
                    interaction, choice_buttons(click, topics, click.asker))
                await send_to_interaction(interaction, [Outgoing(content=thanks)], ephemeral=True)
                return
            view = _view_of(choice_buttons(click, topics, self.faq.asker_tag(click.ref, asker)))
            await send_to_interaction(interaction, [Outgoing(content=thanks, view=view)],
                                      ephemeral=True)
        except Exception as error:
            await self.report_failure(interaction, error)

    async def _choose_instead(self, interaction: discord.Interaction, click: FeedbackClick,
                              asker: Asker) -> None:
        """A topic chosen after "not helpful": its answer, like a clarification's choice; the
        chooser's own choices leave the message."""
        try:
            reply = self.faq.choose_instead(click, asker)
        except UnknownIntentError:  # the knowledge base changed since the button was sent
            await self.notify(interaction, "stale_button", click.lang)
            return
        ephemeral = bool(interaction.message and interaction.message.flags.ephemeral)
        if click.asker == self.faq.asker_tag(click.ref, asker) and interaction.message is not None:
            await self._edit_feedback_buttons(interaction, [])
        await send_to_interaction(interaction, self.render(reply), ephemeral=ephemeral)

    @staticmethod
    async def _edit_feedback_buttons(interaction: discord.Interaction,
                                     instead: list[FeedbackButton]) -> None:
        """Answer the interaction by editing its message: the feedback buttons replaced by
        `instead`, every other component kept."""
        assert interaction.message is not None
        view = discord.ui.View.from_message(interaction.message, timeout=None)
        for item in list(view.children):
            if _is_feedback(item):
                view.remove_item(item)
        next_row = max((item.row or 0 for item in view.children), default=-1) + 1
        for button in instead:
            button.row = next_row
            view.add_item(button)
        await _post(partial(interaction.response.edit_message, view=view))

    async def report_failure(self, interaction: discord.Interaction, error: Exception) -> None:
        """Log the failure with its traceback and send the user a private error notice."""
        logger.error("interaction %s failed", interaction.id, exc_info=error)
        lang = self.faq.language(str(interaction.locale))
        await _quietly(self.notify(interaction, "error", lang))

    def _refused_server(self, guild_id: int | None) -> bool:
        # The allow-list names servers; direct messages (no server) are always answered.
        if guild_id is None or self.access.permits(guild_id):
            return False
        self.faq.count_refusal("discord")
        logger.info("refused server %s (not in FAQBOT_ALLOWED_GUILDS)", guild_id)
        return True

    def _rate(self, user_id: int) -> str:
        self._checks += 1
        if self._checks % SWEEP_EVERY == 0:
            self.limiter.forget_idle()
        return self.limiter.check(user_id)

    @staticmethod
    def _addressed(message: discord.Message, me: discord.ClientUser) -> bool:
        if message.author.bot or message.type not in _USER_MESSAGES:
            return False
        if message.guild is None:
            return True
        return any(user.id == me.id for user in message.mentions)
