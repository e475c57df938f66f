"""The Telegram application: python-telegram-bot's Application wired to the front door; `serve`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable

from telegram import BotCommand
from telegram.error import InvalidToken, TelegramError
from telegram.ext import ApplicationBuilder

from bots.frontdoor.admission import AccessPolicy, Admission, RateLimiter
from bots.frontdoor.door import FrontDoor
from bots.frontdoor.ordering import Turns
from bots.frontdoor.retry import RetryPolicy
from bots.frontdoor.texts import LANGUAGES, ui_text
from bots.service import FAQService
from bots.telegram import config
from bots.telegram.config import (
    CONCURRENT_UPDATES,
    REQUEST_TIMEOUTS,
    TelegramApp,
    WebhookOptions,
    _hide_secrets_in_library_logs,
    api_base_url,
)
from bots.telegram.handlers import Handlers
from bots.telegram.parsing import OUR_COMMANDS, chat_for_logs
from bots.telegram.processing import InHandProcessor
from bots.telegram.receiving import (
    MAX_IN_HAND,
    UpdatesInHand,
    _poll,
    _stop,
    _until_stopped_or_failed,
    _WebhookReceiver,
)
from bots.telegram.replying import RetryingSender
from bots.telegram.transport import AiohttpRequest
from core import ConfigurationError, FAQBot, Settings

logger = logging.getLogger(__name__)

# Updates of one chat waiting for their turn; more are dropped (a flood: every user of the chat
# already told once by the rate limit). Well below MAX_IN_HAND, so that a chat stuck in flood
# control cannot hold every update fetched; above what a busy group sends in a burst.
MAX_WAITING_PER_CHAT = 128
# Attempts of a Bot API call (flood control, network errors, 5xx) before it goes to the error
# handler.
SEND_ATTEMPTS = 5


def build_application(bot: FAQBot | FAQService, settings: Settings) -> TelegramApp:
    """A python-telegram-bot Application wired to `bot`, ready to initialize and start.

    Updates reach it through `application.update_queue`, put there by `serve` (long polling or
    webhook); PTB's own Updater is left unused.
    """
    token = config.token(settings)
    _hide_secrets_in_library_logs(token)
    base = api_base_url(settings.telegram_api_url)
    service = FAQService.of(bot)
    door = FrontDoor(service, _admission(service, settings), Turns(
        per_key=MAX_WAITING_PER_CHAT, slots=CONCURRENT_UPDATES,
        on_overflow=lambda: service.count_dropped("telegram"), describe=_describe_chat),
        feedback_buttons=settings.feedback)
    handlers = Handlers(door)
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(base)
        .base_file_url(base.removesuffix("/bot") + "/file/bot")
        # aiohttp rather than httpx: a third of the bot's CPU under load (bots/telegram/transport)
        .request(AiohttpRequest(pool_size=CONCURRENT_UPDATES, **REQUEST_TIMEOUTS))
        .get_updates_request(AiohttpRequest(pool_size=1, **REQUEST_TIMEOUTS))
        .concurrent_updates(InHandProcessor(UpdatesInHand(MAX_IN_HAND)))
        .rate_limiter(RetryingSender(RetryPolicy("Telegram", attempts=SEND_ATTEMPTS)))
        .updater(None)
        .build()
    )
    handlers.register(application)
    return application


def _admission(service: FAQService, settings: Settings) -> Admission:
    return Admission(AccessPolicy(settings.allowed_chats),
                     RateLimiter(settings.rate_limit_messages, settings.rate_limit_seconds),
                     allow_list="FAQBOT_ALLOWED_CHATS", describe_place=chat_for_logs,
                     count_refusal=lambda: service.count_refusal("telegram"))


def _describe_chat(chat: Hashable) -> str:
    return chat_for_logs(chat if isinstance(chat, int) else None)


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
    for language_code in [*LANGUAGES, None]:
        lang = language_code or bot.language(None)
        commands = [BotCommand(name, ui_text(f"command_{name}", lang)) for name in OUR_COMMANDS]
        try:
            await application.bot.set_my_commands(commands, language_code=language_code)
        except TelegramError as error:  # a missing menu is cosmetic: keep serving
            logger.warning("could not publish the %s commands: %s", language_code or "default",
                           error)
