"""The Telegram application: python-telegram-bot's Application wired to the handlers; `serve`."""

from __future__ import annotations

import asyncio
import logging

from telegram import (
    BotCommand,
)
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    ApplicationBuilder,
)

from bots.service import FAQService
from bots.telegram.config import (
    CONCURRENT_UPDATES,
    REQUEST_TIMEOUTS,
    TelegramApp,
    WebhookOptions,
    _hide_secrets_in_library_logs,
    api_base_url,
    check_token,
)
from bots.telegram.delivery import RetryingRateLimiter
from bots.telegram.handlers import COMMAND_DESCRIPTIONS, _Handlers
from bots.telegram.parsing import OUR_COMMANDS
from bots.telegram.processing import ChatOrderedProcessor
from bots.telegram.receiving import (
    MAX_IN_HAND,
    UpdatesInHand,
    _poll,
    _stop,
    _until_stopped_or_failed,
    _WebhookReceiver,
)
from bots.telegram_transport import AiohttpRequest
from core import ConfigurationError, FAQBot, Settings

logger = logging.getLogger(__name__)

def build_application(bot: FAQBot | FAQService, settings: Settings) -> TelegramApp:
    """A python-telegram-bot Application wired to `bot`, ready to initialize and start.

    Updates reach it through `application.update_queue`, put there by `serve` (long polling or
    webhook); PTB's own Updater is left unused.
    """
    if settings.telegram_bot_token is None:
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is not set")
    token = settings.telegram_bot_token.get_secret_value()
    check_token(token)
    _hide_secrets_in_library_logs(token)
    base = api_base_url(settings.telegram_api_url)
    service = FAQService.of(bot)
    handlers = _Handlers(service, settings)
    processor = ChatOrderedProcessor(CONCURRENT_UPDATES, handlers.screen,
                                     UpdatesInHand(MAX_IN_HAND),
                                     on_overflow=lambda: service.count_dropped("telegram"))
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(base)
        .base_file_url(base.removesuffix("/bot") + "/file/bot")
        # aiohttp rather than httpx: a third of the bot's CPU under load (bots/telegram_transport)
        .request(AiohttpRequest(pool_size=CONCURRENT_UPDATES, **REQUEST_TIMEOUTS))
        .get_updates_request(AiohttpRequest(pool_size=1, **REQUEST_TIMEOUTS))
        .concurrent_updates(processor)
        .rate_limiter(RetryingRateLimiter())
        .updater(None)
        .build()
    )
    handlers.register(application)
    return application


async def serve(bot: FAQBot | FAQService, settings: Settings, stop: asyncio.Event,
                webhook: WebhookOptions | None = None) -> None:
    """Serve Telegram until `stop` is set, then stop cleanly.

    Long polling by default; with `webhook`, Telegram posts updates to `webhook.url` carrying a
    secret generated for this run, and requests without it are refused (403). Pending updates
    are never dropped. The service hears whether Telegram is reachable (for the health check):
    up once the webhook is set or a poll succeeded, down while polls fail. Raises
    ConfigurationError when Telegram refuses the token, at start or at any time later.
    """
    service = FAQService.of(bot)
    service.set_connected("telegram", False)
    application = build_application(service, settings)
    receiver = _WebhookReceiver(application, webhook) if webhook else None
    receiving: asyncio.Task[None] | None = None
    refused = False
    try:
        try:
            await application.initialize()
            await application.start()
            if receiver is not None:
                await receiver.start()
            else:  # getUpdates is refused while a webhook is set
                await application.bot.delete_webhook(drop_pending_updates=False)
            service.set_connected("telegram", True)
            receiving = asyncio.create_task(
                receiver.watch(service) if receiver else _poll(application, service),
                name="telegram-updates")
            await _publish_commands(application, service)
            logger.info("Telegram: serving as @%s", application.bot.username)
            await _until_stopped_or_failed(stop, receiving)
        except InvalidToken:
            refused = True
            raise ConfigurationError("Telegram refused TELEGRAM_BOT_TOKEN (unauthorized)") from None
    finally:
        service.set_connected("telegram", False)
        await _stop(application, receiving, receiver, confirm=not refused)
    logger.info("Telegram: stopped")


async def _publish_commands(application: TelegramApp, bot: FAQService) -> None:
    """The command menu in French, in English, and by default in the knowledge base's language."""
    for language_code in [*COMMAND_DESCRIPTIONS, None]:
        descriptions = COMMAND_DESCRIPTIONS.get(language_code or bot.language(None),
                                                COMMAND_DESCRIPTIONS["en"])
        commands = [BotCommand(name, descriptions[name]) for name in OUR_COMMANDS]
        try:
            await application.bot.set_my_commands(commands, language_code=language_code)
        except TelegramError as error:  # a missing menu is cosmetic: keep serving
            logger.warning("could not publish the %s commands: %s", language_code or "default",
                           error)
