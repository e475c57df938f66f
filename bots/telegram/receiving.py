"""Receiving Telegram updates: long polling or a webhook; on a stop, finishing and confirming
what is in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
import secrets
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, Update
from telegram.error import InvalidToken, RetryAfter, TelegramError

from bots.service import FAQService
from bots.telegram.config import (
    CONCURRENT_UPDATES,
    REQUEST_TIMEOUTS,
    TelegramApp,
    WebhookOptions,
    _hide_secrets_in_library_logs,
)
from bots.telegram.processing import InHandProcessor
from bots.telegram.replying import RetryingSender, retry_after_seconds
from bots.telegram.transport import call_unparsed

logger = logging.getLogger(__name__)

POLL_TIMEOUT = dt.timedelta(seconds=30)

# Updates fetched and not finished yet: polling fetches no more, so that a stop can finish them.
MAX_IN_HAND = 2 * CONCURRENT_UPDATES

# getUpdates returns at most this many updates from its offset (Telegram's maximum limit).
GET_UPDATES_LIMIT = 100
# A poll goes out once it may bring at least half a batch of new updates: those in hand come
# back with them while the offset is held, each a request's worth of JSON for nothing.
REFILL_AT = GET_UPDATES_LIMIT // 2
# An update is confirmed to Telegram once finished; one unfinished this long is confirmed all
# the same once it keeps newer updates from being fetched (a chat in long flood control would
# hold up every other chat), or with a webhook once its request has been open that long.
MAX_HOLD_SECONDS = 3.0
# While an unfinished update holds the offset, Telegram answers a poll at once (with the updates
# in hand): after a poll that was not full, the next waits until every update in hand is
# finished, or this long.
HELD_POLL_PAUSE = 0.5
# On a stop, the updates in hand get this long to finish, retries included.
DRAIN_SECONDS = 10.0
# A failed getUpdates is tried again after 1, 2, 4... s, at most this long apart.
MAX_POLL_BACKOFF = 30.0
# With a webhook, how often to ask Telegram whether it is still set (for the health check).
WEBHOOK_CHECK_SECONDS = 60.0
# Webhook requests Telegram keeps open at once (its maximum): each waits for its update's answer.
WEBHOOK_CONNECTIONS = 100

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

class UpdatesInHand:
    """The updates taken from Telegram and not finished yet, and what may be confirmed.

    Telegram forgets an update once it is confirmed: by the `offset` of a later getUpdates
    (every update below it), or by a 2xx answer to its webhook request. An update is confirmed
    only once finished (answered, or dropped and counted), so a process killed with SIGKILL
    loses none: Telegram gives the unconfirmed ones to the next process, which answers again
    those finished but not confirmed yet (at least once).

    The offset is one watermark and getUpdates returns at most GET_UPDATES_LIMIT updates from
    it, so polling from the first unfinished update gives back the later ones already taken
    (`window` sizes the poll so that it may bring new ones), and one update that stays
    unfinished would keep every other chat from getting new updates. Hence the one exception:
    an update in hand for MAX_HOLD_SECONDS stops holding back confirmation once it does keep new
    updates from being fetched (or, by webhook, once its request has been open that long). It
    is logged, and lost if the process dies before it finishes. At most `limit` updates are in
    hand, so that a stop can finish them.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.next_offset = 0  # the id after the last update taken
        self._taken: dict[int, float] = {}  # unfinished update id -> when it was taken
        self._let_go: set[int] = set()  # unfinished, confirmed all the same (held too long)
        # The ids taken at or above the offset, in order (only a count up to the limit counts).
        self._unconfirmed: deque[int] = deque(maxlen=GET_UPDATES_LIMIT)
        self._waiters: dict[int, asyncio.Future[bool]] = {}  # webhook requests awaiting an id
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._taken)

    def take(self, update_id: int) -> bool:
        """Hold an update fetched (or received by webhook) until it is finished; False if it
        is in hand already."""
        if update_id in self._taken:
            return False
        self._taken[update_id] = time.monotonic()
        if update_id >= self.next_offset:
            self._unconfirmed.append(update_id)
            self.next_offset = update_id + 1
        return True

    def finish(self, update_id: int) -> None:
        """An update was handled (answered, screened out, or given up with an error logged)."""
        self._taken.pop(update_id, None)
        self._let_go.discard(update_id)
        waiter = self._waiters.pop(update_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(True)
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def offset(self) -> int:
        """The getUpdates offset that confirms every update below the first unfinished one."""
        return min(self._taken.keys() - self._let_go, default=self.next_offset)

    async def window(self) -> tuple[int, int]:
        """The offset and limit of the next getUpdates, once it may bring new updates: there
        is room in hand, and at most REFILL_AT updates taken would come back with them."""
        while True:
            again = self._taken_since(self.offset)
            room = self.limit - len(self._taken)
            if room > 0 and again > REFILL_AT:
                self._let_go_of_overdue()
                again = self._taken_since(self.offset)
            if room > 0 and again <= REFILL_AT:
                return self.offset, min(GET_UPDATES_LIMIT, again + room)
            overdue_in = self._until_oldest_overdue() if room > 0 else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(overdue_in):
                    await self._changed.wait()

    async def caught_up(self, timeout: float) -> None:
        """Wait until no unfinished update holds the offset back, `timeout` at most."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.offset < self.next_offset:
                    await self._changed.wait()

    async def settled(self, update_id: int) -> bool:
        """Wait until the update may be confirmed: True once it is finished, or in hand for
        MAX_HOLD_SECONDS (let go); False if the stop gave it up (`give_up`)."""
        if update_id not in self._taken:
            return True
        waiter = self._waiters.get(update_id)
        if waiter is None:
            waiter = self._waiters[update_id] = asyncio.get_running_loop().create_future()
        remaining = self._taken[update_id] + MAX_HOLD_SECONDS - time.monotonic()
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(waiter), max(remaining, 0.0))
        self._let_go_of([update_id])
        return True

    def give_up(self) -> None:
        """The stop's drain ended: the webhook requests still waiting are answered as failed,
        so that Telegram sends their updates again."""
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_result(False)
        self._waiters.clear()

    def _taken_since(self, offset: int) -> int:
        """How many updates taken Telegram would give back from `offset`."""
        while self._unconfirmed and self._unconfirmed[0] < offset:
            self._unconfirmed.popleft()
        return len(self._unconfirmed)

    def _until_oldest_overdue(self) -> float | None:
        """Seconds until the oldest update holding the offset is in hand MAX_HOLD_SECONDS."""
        holding = [taken for update_id, taken in self._taken.items()
                   if update_id not in self._let_go]
        return max(min(holding) + MAX_HOLD_SECONDS - time.monotonic(), 0.0) if holding else None

    def _let_go_of_overdue(self) -> None:
        deadline = time.monotonic() - MAX_HOLD_SECONDS
        self._let_go_of([update_id for update_id, taken in self._taken.items()
                         if taken <= deadline and update_id not in self._let_go])

    def _let_go_of(self, update_ids: list[int]) -> None:
        update_ids = [update_id for update_id in update_ids if update_id in self._taken]
        if update_ids:
            self._let_go.update(update_ids)
            logger.warning("confirming %d updates unfinished after %.0f s, not to hold up "
                           "the others: a crash before they finish would lose them",
                           len(update_ids), MAX_HOLD_SECONDS)


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

    Each poll's offset is the first update not finished (`UpdatesInHand`): nothing is
    confirmed before it is finished. Telegram gives back the updates in hand from there on:
    they are skipped. Such a poll is answered at once, so after one that was not full the next
    waits until nothing holds the offset, HELD_POLL_PAUSE at most. A failed poll marks Telegram
    down and is tried again after 1, 2, 4... s (or what flood control asks); a poll that
    succeeds marks it up. A refused token (InvalidToken) ends polling: it is raised.
    """
    bot = application.bot
    in_hand = _in_hand(application)
    failures = 0
    while True:
        offset, limit = await in_hand.window()
        try:
            updates = await _fetch_updates(bot, offset, limit)
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
            update_id = int(update["update_id"])
            if update_id >= in_hand.next_offset and in_hand.take(update_id):
                application.update_queue.put_nowait(Update.de_json(update, bot))
        if len(updates) < limit:  # Telegram had no more: no need to ask again at once
            await in_hand.caught_up(HELD_POLL_PAUSE)


async def _fetch_updates(bot: Bot, offset: int, limit: int) -> list[dict[str, Any]]:
    """getUpdates, as Telegram's JSON: the caller parses only the updates not in hand yet."""
    seconds = POLL_TIMEOUT.total_seconds()  # the long poll's wait, on top of the usual one
    request = {"offset": offset, "limit": limit, "allowed_updates": ALLOWED_UPDATES,
               "timeout": int(seconds)}
    updates: list[dict[str, Any]] = await call_unparsed(
        bot, "getUpdates", request, read_timeout=seconds + REQUEST_TIMEOUTS["read_timeout"])
    return updates


class _WebhookReceiver:
    """Receives the updates Telegram posts, on an aiohttp server of our own.

    Telegram posts an update again until it is answered 2xx, so each request is answered once
    its update is finished (`UpdatesInHand.settled`): a process killed meanwhile loses nothing,
    and an update answered but not confirmed is answered again by the next process (at least
    once). A request open MAX_HOLD_SECONDS is answered 200 all the same (Telegram keeps at most
    WEBHOOK_CONNECTIONS open, and a chat in long flood control must not hold them all); once the
    stop begins, new requests get 503, and so do those whose update the drain gave up.

    python-telegram-bot's webhook server compares the secret with `!=` (its time depends on how
    much of a guess is right) and logs a wrong secret at DEBUG; this one compares in constant
    time (hmac.compare_digest) and never logs what a request carried.
    """

    def __init__(self, application: TelegramApp, options: WebhookOptions) -> None:
        self.application = application
        self.options = options
        self.secret = secrets.token_urlsafe(32)
        self.accepting = True
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
                                               max_connections=WEBHOOK_CONNECTIONS,
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
        if not self.accepting:  # the stop began: Telegram sends it again to the next start
            return web.Response(status=503)
        in_hand = _in_hand(self.application)
        if in_hand.take(update.update_id):  # not a copy of one in hand (our 2xx was late)
            self.application.update_queue.put_nowait(update)
        handled = await in_hand.settled(update.update_id)
        return web.Response() if handled else web.Response(status=503)


async def _stop(application: TelegramApp, receiving: asyncio.Task[None] | None,
                receiver: _WebhookReceiver | None, *, confirm: bool) -> None:
    """Stop receiving, finish the updates in hand within DRAIN_SECONDS (retries included),
    confirm to Telegram only what was finished, and release every connection, whatever
    failed before."""
    if receiving is not None:
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    if receiver is not None:
        receiver.accepting = False
    try:
        offset = await _drain(application) if application.running else None
        if confirm and receiver is None and offset:
            await _confirm(application.bot, offset)
    finally:
        try:
            if receiver is not None:  # its requests are answered by now
                await receiver.close()
        finally:
            try:
                await application.shutdown()
            finally:
                await application.bot.shutdown()  # a refused start leaves its sessions open


async def _drain(application: TelegramApp) -> int:
    """Let the updates in hand finish, retries included, for DRAIN_SECONDS at most; returns
    the offset that confirms only the updates finished by the deadline (webhook requests of
    those still unfinished are answered 503)."""
    in_hand = _in_hand(application)
    stopping = asyncio.create_task(application.stop())
    done, _ = await asyncio.wait({stopping}, timeout=DRAIN_SECONDS)
    offset = in_hand.offset
    if not done:
        logger.warning("stopping: %d updates unfinished after %.0f s; their retries give up",
                       len(in_hand), DRAIN_SECONDS)
        in_hand.give_up()
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
