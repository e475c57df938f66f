"""The Discord front door: slash commands, autocomplete, buttons, mentions and direct messages.

The adapter extracts the text and its context (user, server, locale), asks `FAQBot` (through
`FAQService`, which logs and counts the question), and renders the `Reply`: an embed for a
curated answer, plain text with buttons or a select menu for the rest. Buttons and menus carry
only an intent id and a language in their custom id, so they keep working after a restart
(`discord.ui.DynamicItem`). Under a curated answer, two feedback buttons (bots/feedback.py):
the asker's click edits the message (the buttons go, or "not helpful" puts the closest other
topics in their place) and thanks privately; anyone else is thanked privately (with those
topics, after "not helpful"), and the message stays as everyone sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bots import feedback
from bots.common import AccessPolicy, RateLimiter, split_message, ui_text
from bots.feedback import FeedbackClick, FeedbackTicket
from bots.service import Asker, FAQService
from core import ConfigurationError, FAQBot, Reply, Settings, Suggestion, UnknownIntentError
from core.text import guess_language

logger = logging.getLogger(__name__)

# Discord's limits (https://discord.com/developers/docs/resources/message).
CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
BUTTON_LABEL_LIMIT = 80
SELECT_OPTION_LIMIT = 100
SELECT_OPTIONS_PER_MENU = 25
MENUS_PER_MESSAGE = 5
# A message holds 25 components; keep one place free for "none of these".
MAX_ANSWER_BUTTONS = 24
BUTTONS_PER_ROW = 5
# Under an answer with feedback buttons, related buttons fill at most four rows of five.
MAX_RELATED_WITH_FEEDBACK = 20
AUTOCOMPLETE_CHOICES = 25
CHOICE_LIMIT = 100
SHUTDOWN_SECONDS = 5.0
# REST connections kept to Discord. discord.py's own pool has no bound, so a burst of
# interactions opens (and TLS-negotiates) one connection per reply; a bounded pool reuses them.
HTTP_CONNECTIONS = 64
# The rate limiter forgets idle users this often (in checks), so memory stays bounded.
SWEEP_EVERY = 1000
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

# A bot token is three base64url parts separated by dots (user id, timestamp, signature).
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")
_INTENT = r"[a-z][a-z0-9_]*"
_LANG = r"[a-z]{2}"
# User, role and channel mentions are markup, not words of the question.
_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>")
_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)

# Command names and descriptions are written in English (Discord's default locale) and
# translated to French by `FrenchTranslator`.
_FRENCH = {
    "ask": "demander",
    "Ask the FAQ a question": "Poser une question à la FAQ",
    "question": "question",
    "Your question": "Votre question",
    "private": "privé",
    "Show the answer to you only": "Ne montrer la réponse qu'à vous",
    "faq": "faq",
    "Browse the questions I can answer": "Parcourir les questions auxquelles je sais répondre",
}


def check_token(token: str) -> None:
    """Raise ConfigurationError when `token` cannot be a Discord bot token (never quoting it)."""
    token = token.strip()
    if token.lower().startswith("bot "):
        raise ConfigurationError("DISCORD_BOT_TOKEN: give the token without the 'Bot ' prefix")
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ConfigurationError("DISCORD_BOT_TOKEN: not a Discord bot token "
                                 "(expected three dot-separated parts)")


def build_client(bot: FAQBot | FAQService, settings: Settings, *, shard_count: int | None = None,
                 shard_ids: list[int] | None = None) -> commands.Bot:
    """A discord.py bot that answers from `bot`; `AutoShardedBot` when sharding is asked.

    `shard_count`: None for one gateway connection, 0 for the count Discord recommends, N for
    N shards. `shard_ids`: the shards this process runs (needs `shard_count`).
    Sets the process-wide `discord.http.Route.BASE` and `DiscordWebSocket.DEFAULT_GATEWAY` when
    the settings point at another API or gateway (a self-hosted proxy, or the test fakes).
    """
    _check_shards(shard_count, shard_ids)
    if settings.discord_api_url:
        _check_url("FAQBOT_DISCORD_API_URL", settings.discord_api_url, ("http", "https"))
        discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
    if settings.discord_gateway_url:
        _check_url("FAQBOT_DISCORD_GATEWAY_URL", settings.discord_gateway_url, ("ws", "wss"))
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    # The bot never joins a voice channel: warnings about missing voice libraries only alarm.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    options: dict[str, Any] = {
        "command_prefix": commands.when_mentioned,  # required by commands.Bot; never used
        "help_command": None,
        "intents": discord.Intents.default(),  # no privileged intent: no message content
        "allowed_mentions": ALLOWED_MENTIONS,
        "member_cache_flags": discord.MemberCacheFlags.none(),
        "chunk_guilds_at_startup": False,
        "max_messages": None,  # the bot never looks a past message up
    }
    cog = FaqCog(bot, settings)
    if shard_count is None:
        return FaqClient(cog, settings.discord_guild, **options)
    return ShardedFaqClient(cog, settings.discord_guild, shard_count=shard_count or None,
                            shard_ids=shard_ids, **options)


def _check_shards(shard_count: int | None, shard_ids: list[int] | None) -> None:
    if shard_count is not None and shard_count < 0:
        raise ConfigurationError("--shards: the shard count cannot be negative")
    if shard_ids is None:
        return
    if not shard_count:
        raise ConfigurationError("--shard-ids needs --shards N (the total shard count)")
    if not shard_ids or any(not 0 <= shard < shard_count for shard in shard_ids):
        raise ConfigurationError(f"--shard-ids: each id must be between 0 and {shard_count - 1}")


def _check_url(variable: str, url: str, schemes: tuple[str, ...]) -> None:
    parsed = yarl.URL(url)
    if parsed.scheme not in schemes or not parsed.host:
        raise ConfigurationError(f"{variable}: expected a {' or '.join(schemes)} URL")


async def serve(bot: FAQBot | FAQService, settings: Settings, stop: asyncio.Event, *,
                shard_count: int | None = None, shard_ids: list[int] | None = None) -> None:
    """Connect to Discord and answer until `stop` is set, then close within a few seconds.

    Raises ConfigurationError when the token is missing, malformed or refused by Discord.
    The service hears when the gateway connection is up (for the health check) and down.
    """
    if settings.discord_bot_token is None:
        raise ConfigurationError("DISCORD_BOT_TOKEN is not set")
    token = settings.discord_bot_token.get_secret_value().strip()
    check_token(token)
    service = FAQService.of(bot)
    service.set_connected("discord", False)
    client = build_client(service, settings, shard_count=shard_count, shard_ids=shard_ids)
    async with client:
        runner = asyncio.create_task(client.start(token), name="discord-client")
        stopper = asyncio.create_task(stop.wait(), name="discord-stop")
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if runner.done():
            _report_early_end(runner)
        else:
            await _close(client, runner)


def _report_early_end(runner: asyncio.Task[None]) -> None:
    # The client ended before `stop`: a refused token is a configuration error (exit 2).
    error = runner.exception()
    if isinstance(error, discord.LoginFailure) or (
            isinstance(error, discord.ConnectionClosed) and error.code == 4004):
        raise ConfigurationError("DISCORD_BOT_TOKEN: Discord refused the token") from None
    if error is not None:
        raise error
    logger.warning("the Discord connection ended before a stop was asked")


async def _close(client: commands.Bot, runner: asyncio.Task[None]) -> None:
    logger.info("closing the Discord connection")
    try:
        await asyncio.wait_for(client.close(), SHUTDOWN_SECONDS)
    except TimeoutError:
        logger.warning("Discord client did not close within %.0f s", SHUTDOWN_SECONDS)
    if not runner.done():
        runner.cancel()
    (outcome,) = await asyncio.gather(runner, return_exceptions=True)
    if isinstance(outcome, Exception):
        logger.warning("Discord client ended with %s while closing", type(outcome).__name__)


class FrenchTranslator(app_commands.Translator):
    """French names and descriptions for the slash commands; English is the default."""

    async def translate(self, string: locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        if locale is discord.Locale.french:
            return _FRENCH.get(string.message)
        return None


class FaqClient(commands.Bot):
    """One gateway connection: the bot for servers that do not need sharding."""

    def __init__(self, cog: FaqCog, sync_guild: int | None, **options: Any) -> None:
        super().__init__(**options)
        self.faq_cog = cog
        self.sync_guild = sync_guild

    async def login(self, token: str) -> None:
        """Log in over a bounded connection pool (HTTP_CONNECTIONS)."""
        # The pool needs the running event loop, which exists from here on.
        self.http.connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS)
        await super().login(token)

    async def setup_hook(self) -> None:
        """Install the commands and the persistent buttons, then publish the commands."""
        await self.add_cog(self.faq_cog)
        self.add_dynamic_items(AnswerButton, NoneOfTheseButton, TopicMenu, FeedbackButton)
        await self.tree.set_translator(FrenchTranslator())
        await self._sync_commands()

    async def on_message(self, message: discord.Message, /) -> None:
        """Answer mentions and direct messages (there are no prefix commands to process)."""
        if self.user is not None:
            await self.faq_cog.answer_message(message, self.user)

    async def on_connect(self) -> None:
        """The gateway session is up (READY received)."""
        self.faq_cog.faq.set_connected("discord", True)

    async def on_resumed(self) -> None:
        """A dropped gateway session came back."""
        self.faq_cog.faq.set_connected("discord", True)

    async def on_disconnect(self) -> None:
        """The gateway connection dropped; discord.py reconnects by itself."""
        self.faq_cog.faq.set_connected("discord", False)

    async def _sync_commands(self) -> None:
        # One server syncs instantly (handy while testing); global commands take a while.
        guild = discord.Object(self.sync_guild) if self.sync_guild else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as error:
            # Mentions and direct messages still work without slash commands: keep serving.
            logger.error("could not publish the slash commands: %s %s", error.status, error.text)
            return
        where = f"server {self.sync_guild}" if guild else "all servers"
        logger.info("published %d slash commands to %s", len(synced), where)


class ShardedFaqClient(FaqClient, commands.AutoShardedBot):
    """The same bot on several gateway connections (shards), for large numbers of servers."""


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
                    asker = Asker("discord", message.channel.id, message.author.id, message.id)
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
    return cast(FaqClient, interaction.client).faq_cog


def _interaction_asker(interaction: discord.Interaction) -> Asker:
    """Who used a command or component, for the question log (which stores pseudonyms)."""
    return Asker("discord", interaction.channel_id, interaction.user.id, interaction.id)


async def _quietly(sending: Any) -> None:
    # Used for error notices: if even the notice cannot be sent, logging is all that is left.
    try:
        await sending
    except discord.HTTPException as error:
        logger.warning("could not send an error notice: %s", error.status)
