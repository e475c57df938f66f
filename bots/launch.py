"""What `faqbot run` starts: the platforms with a token, each elected when a PostgreSQL log is
shared, served until a signal, with logging that never shows a token.

bots/cli.py reads the flags and picks the exit code; this module turns them into servers.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from typing import TYPE_CHECKING

from bots.logs import install_secret_filter
from core import FAQBot, FaqbotError, Settings

# Each platform's adapter is imported only when its platform starts (docs/performance.md).
if TYPE_CHECKING:
    import asyncio

    from bots.operations import RunOptions
    from bots.service import FAQService, Server

logger = logging.getLogger("faqbot")


def servers(args: argparse.Namespace, settings: Settings) -> list[Server]:
    """The platforms to start; a platform named explicitly must have a valid token."""
    wanted = ("telegram", "discord") if args.platform == "all" else (args.platform,)
    servers: list[Server] = []
    if "telegram" in wanted:
        servers += _telegram_server(args, settings, required=args.platform == "telegram")
    if "discord" in wanted:
        servers += _discord_server(args, settings, required=args.platform == "discord")
    return servers


def _telegram_server(args: argparse.Namespace, settings: Settings, required: bool) -> list[Server]:
    if settings.telegram_bot_token is None and not required:
        return []
    from bots import telegram as telegram_adapter

    telegram_adapter.token(settings)  # a missing or bad token stops `run` before any platform
    webhook = None
    if args.webhook_url:
        webhook = telegram_adapter.WebhookOptions(url=args.webhook_url, listen=args.listen,
                                                  port=args.port)

    async def serve(bot: FAQService, settings: Settings, stop: asyncio.Event) -> None:
        await telegram_adapter.serve(bot, settings, stop, webhook)

    return [_elected_if_shared(serve, "telegram", settings)]


def _elected_if_shared(serve: Server, platform: str, settings: Settings) -> Server:
    """With a PostgreSQL question log, several processes may share one bot: `serve` then runs
    only in the one elected to (bots/leadership.py)."""
    from core.questionlog.factory import is_postgres_url, postgres_driver

    if settings.db is None or not is_postgres_url(settings.db):
        return serve
    with postgres_driver():
        from bots.leadership import elected
    return elected(serve, platform, settings.db)


def _discord_server(args: argparse.Namespace, settings: Settings, required: bool) -> list[Server]:
    if settings.discord_bot_token is None and not required:
        return []
    from bots import discord as discord_adapter

    discord_adapter.token(settings)  # a missing or bad token stops `run` before any platform
    shard_ids = _parse_shard_ids(args.shard_ids)

    async def serve(bot: FAQService, settings: Settings, stop: asyncio.Event) -> None:
        await discord_adapter.serve(bot, settings, stop, shard_count=args.shards,
                                    shard_ids=shard_ids)

    return [serve]


def _parse_shard_ids(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise FaqbotError(f"--shard-ids: not a comma-separated list of numbers: {text}") from None


async def serve_until_signal(bot: FAQBot, settings: Settings, servers: list[Server],
                             options: RunOptions) -> None:
    import asyncio
    import signal

    from bots.operations import serve_platforms

    stop, reload_requests = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_requests.set)
    _freeze_what_start_up_loaded()
    logger.info("serving; SIGINT or SIGTERM stops, SIGHUP reloads the knowledge base")
    await serve_platforms(bot, settings, servers, options, stop=stop,
                          reload_requests=reload_requests)
    logger.info("stopped")


def _freeze_what_start_up_loaded() -> None:
    """Take the objects alive now (the model, the knowledge base, the libraries: about 43,000)
    out of the garbage collector's sight. They live as long as the process, yet each of its
    full passes, which a burst of messages sets off again and again, walks them all: frozen,
    a Telegram message costs about 6 % less CPU (docs/performance.md). A bot replaced by a
    reload is still freed: reference counting frees it, as it holds no reference cycle
    (tests/bots/test_reload.py)."""
    gc.collect()
    gc.freeze()


def configure_logging(settings: Settings, json_lines: bool = False) -> None:
    from bots.logs import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # httpx logs every request URL at INFO, and Telegram's URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    secrets = [secret.get_secret_value() for secret in
               (settings.telegram_bot_token, settings.discord_bot_token, settings.id_key)
               if secret]
    install_secret_filter(secrets)
