"""The Discord client: the token, the connection (one gateway or shards), the slash commands'
publication, and `serve`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bots.discord.cog import FaqCog
from bots.discord.components import ChoiceButton, FeedbackButton, TopicMenu
from bots.discord.replying import ALLOWED_MENTIONS
from bots.frontdoor.admission import AccessPolicy, Admission, RateLimiter
from bots.frontdoor.door import FrontDoor
from bots.frontdoor.ordering import Turns
from bots.frontdoor.texts import FRENCH_COMMANDS
from bots.service import FAQService
from core import ConfigurationError, FAQBot, Settings

logger = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 5.0
# REST connections kept to Discord. discord.py's own pool has no bound, so a burst of
# interactions opens (and TLS-negotiates) one connection per reply; a bounded pool reuses them.
HTTP_CONNECTIONS = 64

# A bot token is three base64url parts separated by dots (user id, timestamp, signature).
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")

def check_token(token: str) -> None:
    """Raise ConfigurationError when `token` cannot be a Discord bot token (never quoting it)."""
    token = token.strip()
    if token.lower().startswith("bot "):
        raise ConfigurationError("DISCORD_BOT_TOKEN: give the token without the 'Bot ' prefix")
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ConfigurationError("DISCORD_BOT_TOKEN: not a Discord bot token "
                                 "(expected three dot-separated parts)")


def token(settings: Settings) -> str:
    """The bot token of `settings`; ConfigurationError when it is missing or malformed."""
    if settings.discord_bot_token is None:
        raise ConfigurationError("DISCORD_BOT_TOKEN is not set")
    value = settings.discord_bot_token.get_secret_value().strip()
    check_token(value)
    return value


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
    cog = FaqCog(_front_door(FAQService.of(bot), settings))
    if shard_count is None:
        return FaqClient(cog, settings.discord_guild, **options)
    return ShardedFaqClient(cog, settings.discord_guild, shard_count=shard_count or None,
                            shard_ids=shard_ids, **options)


def _front_door(service: FAQService, settings: Settings) -> FrontDoor:
    # The allow-list names servers; direct messages (no server) are always answered.
    admission = Admission(
        AccessPolicy(settings.allowed_guilds, open_without_place=True),
        RateLimiter(settings.rate_limit_messages, settings.rate_limit_seconds),
        allow_list="FAQBOT_ALLOWED_GUILDS", describe_place=lambda guild: f"server {guild}",
        count_refusal=lambda: service.count_refusal("discord"))
    return FrontDoor(service, admission, Turns(), feedback_buttons=settings.feedback)


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
    bot_token = token(settings)
    service = FAQService.of(bot)
    service.set_connected("discord", False)
    client = build_client(service, settings, shard_count=shard_count, shard_ids=shard_ids)
    async with client:
        runner = asyncio.create_task(client.start(bot_token), name="discord-client")
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
            return FRENCH_COMMANDS.get(string.message)
        return None


class FaqClient(commands.Bot):
    """One gateway connection: the bot for servers that do not need sharding."""

    def __init__(self, cog: FaqCog, sync_guild: int | None, **options: Any) -> None:
        super().__init__(**options)
        self.faq_cog = cog
        self.door = cog.door  # what the persistent buttons find through the interaction
        self.sync_guild = sync_guild

    async def login(self, token: str) -> None:
        """Log in over a bounded connection pool (HTTP_CONNECTIONS)."""
        # The pool needs the running event loop, which exists from here on.
        self.http.connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS)
        await super().login(token)

    async def setup_hook(self) -> None:
        """Install the commands and the persistent buttons, then publish the commands."""
        await self.add_cog(self.faq_cog)
        self.add_dynamic_items(ChoiceButton, TopicMenu, FeedbackButton)
        await self.tree.set_translator(FrenchTranslator())
        await self._sync_commands()

    async def on_message(self, message: discord.Message, /) -> None:
        """Answer mentions and direct messages (there are no prefix commands to process)."""
        if self.user is not None:
            await self.faq_cog.answer_message(message, self.user)

    async def on_connect(self) -> None:
        """The gateway session is up (READY received)."""
        self.door.service.set_connected("discord", True)

    async def on_resumed(self) -> None:
        """A dropped gateway session came back."""
        self.door.service.set_connected("discord", True)

    async def on_disconnect(self) -> None:
        """The gateway connection dropped; discord.py reconnects by itself."""
        self.door.service.set_connected("discord", False)

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
