"""Receiving Telegram updates: long polling or a webhook; on a stop, finishing and confirming
what is in hand.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import secrets
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    Bot,
    Update,
)
from telegram.error import InvalidToken, RetryAfter, TelegramError

from bots.service import FAQService
from bots.telegram.config import (
    CONCURRENT_UPDATES,
    TelegramApp,
    WebhookOptions,
    _hide_secrets_in_library_logs,
)
from bots.telegram.processing import InHandProcessor
from bots.telegram.replying import RetryingSender, retry_after_seconds

logger = logging.getLogger(__name__)

POLL_TIMEOUT = dt.timedelta(seconds=30)

# Updates fetched and not finished yet: polling fetches no more, so that a stop can finish them.
MAX_IN_HAND = 2 * CONCURRENT_UPDATES

# On a stop, the updates in hand get this long to finish, retries included.
DRAIN_SECONDS = 10.0
# A failed getUpdates is tried again after 1, 2, 4... s, at most this long apart.
MAX_POLL_BACKOFF = 30.0
# With a webhook, how often to ask Telegram whether it is still set (for the health check).
WEBHOOK_CHECK_SECONDS = 60.0

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

class UpdatesInHand:
    """The updates fetched from Telegram and not finished yet, and the polling offset.

    Telegram forgets every update below the `offset` of a getUpdates call, so the next poll
    confirms what the previous one fetched. Polling waits for `room` before fetching, so that
    at most `limit` updates are in hand when a stop comes and the drain can finish them; the
    stop's last call confirms only up to the first update still unfinished (`first_unfinished`).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.next_offset = 0  # the id after the last update fetched
        self._ids: set[int] = set()
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._ids)

    def take(self, update_id: int) -> None:
        """An update was fetched (or arrived by webhook) and is being handled."""
        self._ids.add(update_id)
        self.next_offset = max(self.next_offset, update_id + 1)

    def finish(self, update_id: int) -> None:
        """An update was handled (answered, screened out, or given up with an error logged)."""
        self._ids.discard(update_id)
        self._changed.set()
        self._changed = asyncio.Event()

    async def room(self) -> int:
        """How many more updates may be fetched, once there is room for one at least."""
        while len(self._ids) >= self.limit:
            await self._changed.wait()
        return self.limit - len(self._ids)

    def first_unfinished(self) -> int:
        """The offset that confirms every update handled before the first unfinished one."""
        return min(self._ids, default=self.next_offset)


def _in_hand(application: TelegramApp) -> UpdatesInHand:
    processor = application.update_processor
    assert isinstance(processor, InHandProcessor)
    return processor.in_hand


async def _until_stopped_or_failed(stop: asyncio.Event, receiving: asyncio.Task[None]) -> None:
    """Wait for `stop`; if receiving updates ends first (a refused token), raise its error."""
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({stopping, receiving}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if receiving.done():
        receiving.result()


async def _poll(application: TelegramApp, service: FAQService) -> None:
    """Long-poll getUpdates into the application's queue until cancelled (the webhook is
    deleted by then).

    Fetches only while fewer than MAX_IN_HAND updates are unfinished. A failed poll marks
    Telegram down and is tried again after 1, 2, 4... s (or what flood control asks); a poll
    that succeeds marks it up. A refused token (InvalidToken) ends polling: it is raised.
    """
    bot = application.bot
    in_hand = _in_hand(application)
    failures = 0
    while True:
        room = await in_hand.room()
        try:
            updates = await bot.get_updates(offset=in_hand.next_offset, limit=min(room, 100),
                                            timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES)
        except InvalidToken:
            raise
        except TelegramError as error:
            failures += 1
            service.set_connected("telegram", False)
            delay = (retry_after_seconds(error) if isinstance(error, RetryAfter)
                     else min(2.0 ** (failures - 1), MAX_POLL_BACKOFF))
            logger.warning("Telegram getUpdates failed (%s): retry in %.1f s", error, delay)
            await asyncio.sleep(delay)
            continue
        if failures:
            logger.info("Telegram getUpdates works again after %d failures", failures)
        failures = 0
        service.set_connected("telegram", True)
        for update in updates:
            in_hand.take(update.update_id)
            application.update_queue.put_nowait(update)


class _WebhookReceiver:
    """Receives the updates Telegram posts, on an aiohttp server of our own.

    python-telegram-bot's webhook server compares the secret with `!=` (its time depends on how
    much of a guess is right) and logs a wrong secret at DEBUG; this one compares in constant
    time (hmac.compare_digest) and never logs what a request carried.
    """

    def __init__(self, application: TelegramApp, options: WebhookOptions) -> None:
        self.application = application
        self.options = options
        self.secret = secrets.token_urlsafe(32)
        self._runner: web.AppRunner | None = None
        _hide_secrets_in_library_logs(self.secret)

    async def start(self) -> None:
        """Listen, then register the webhook with Telegram."""
        app = web.Application()
        app.router.add_post(urlsplit(self.options.url).path or "/", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.options.listen, self.options.port).start()
        await self.application.bot.set_webhook(self.options.url, secret_token=self.secret,
                                               allowed_updates=ALLOWED_UPDATES,
                                               drop_pending_updates=False)

    async def watch(self, service: FAQService) -> None:
        """Check every WEBHOOK_CHECK_SECONDS that the webhook is still set (up while it is);
        until cancelled, or a refused token (raised)."""
        while True:
            await asyncio.sleep(WEBHOOK_CHECK_SECONDS)
            service.set_connected("telegram", await self._still_set(self.application.bot))

    async def _still_set(self, bot: Bot) -> bool:
        try:
            info = await bot.get_webhook_info()
        except InvalidToken:
            raise
        except TelegramError as error:
            logger.warning("Telegram getWebhookInfo failed (%s)", error)
            return False
        if info.url != self.options.url:
            logger.error("Telegram no longer has this run's webhook set")
            return False
        return True

    async def close(self) -> None:
        """Stop listening (Telegram keeps what it could not deliver for the next start)."""
        if self._runner is not None:
            await self._runner.cleanup()

    def genuine(self, request: web.Request) -> bool:
        """Whether the request carries this run's secret (compared in constant time)."""
        given = request.headers.get(SECRET_HEADER, "")
        return hmac.compare_digest(given.encode(), self.secret.encode())

    async def _receive(self, request: web.Request) -> web.Response:
        if not self.genuine(request):
            logger.info("webhook: refused a request without this run's secret")
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            update = None
        if update is None:
            logger.warning("webhook: a request held no update")
            return web.Response(status=400)
        self.application.update_queue.put_nowait(update)
        return web.Response()


async def _stop(application: TelegramApp, receiving: asyncio.Task[None] | None,
                receiver: _WebhookReceiver | None, *, confirm: bool) -> None:
    """Stop receiving, finish the updates in hand within DRAIN_SECONDS (retries included),
    confirm to Telegram only what was finished, and release every connection, whatever
    failed before."""
    if receiving is not None:
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    if receiver is not None:
        await receiver.close()
    try:
        offset = await _drain(application) if application.running else None
        if confirm and receiver is None and offset:
            await _confirm(application.bot, offset)
    finally:
        try:
            await application.shutdown()
        finally:
            await application.bot.shutdown()  # a refused start leaves the bot's sessions open


async def _drain(application: TelegramApp) -> int:
    """Let the updates in hand finish, retries included, for DRAIN_SECONDS at most; returns
    the offset that confirms only the updates finished by the deadline."""
    in_hand = _in_hand(application)
    stopping = asyncio.create_task(application.stop())
    done, _ = await asyncio.wait({stopping}, timeout=DRAIN_SECONDS)
    offset = in_hand.first_unfinished()
    if not done:
        logger.warning("stopping: %d updates unfinished after %.0f s; their retries give up",
                       len(in_hand), DRAIN_SECONDS)
        limiter = application.bot.rate_limiter
        if isinstance(limiter, RetryingSender):
            limiter.policy.stop_waiting()
    await stopping
    return offset


async def _confirm(bot: Bot, offset: int, attempts: int = 4) -> None:
    """Tell Telegram the updates below `offset` are handled: the next start gets the rest."""
    for attempt in range(attempts):
        try:
            await bot.get_updates(offset=offset, limit=1, timeout=0,
                                  allowed_updates=ALLOWED_UPDATES)
            return
        except TelegramError as error:
            logger.warning("could not confirm the updates handled (%s)", error)
            await asyncio.sleep(0.5 * 2 ** attempt)
    logger.warning("updates handled but not confirmed: Telegram will deliver them again")
