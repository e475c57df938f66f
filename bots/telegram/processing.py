"""Handling updates in order: the updates of one chat take turns, those of different chats run
at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from telegram import (
    Update,
)
from telegram.ext import (
    BaseUpdateProcessor,
)

from bots.telegram.parsing import _chat_for_logs

if TYPE_CHECKING:
    from bots.telegram.receiving import UpdatesInHand

logger = logging.getLogger(__name__)

# Updates of one chat waiting for their turn; more are dropped (a flood: every user of the chat
# already told once by the rate limit). Well below MAX_IN_HAND, so that a chat stuck in flood
# control cannot hold every update fetched; above what a busy group sends in a burst.
MAX_WAITING_PER_CHAT = 128

# What to do with an update as it arrives (see _Handlers.screen): its processing, other work
# instead, or None to drop it.
Screen = Callable[[object, Awaitable[Any]], Awaitable[Any] | None]


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Screens each update on arrival, then handles those of different chats at once and those
    of one chat in arrival order.

    PTB starts one task per update in arrival order. Screening comes first (`screen`: a
    duplicate, a refused chat or a flood is dropped at once, or turned into a notice); a chat
    may then have at most `per_chat` updates waiting (more are dropped, logged once per flood,
    counted). A FIFO lock per chat makes the tasks of one chat take turns, so a user's second
    question is never answered before the first, and only the chat's current update holds one
    of the `max_concurrent` slots: a chat waiting out flood control holds one slot, not all.
    """

    def __init__(self, max_concurrent: int, screen: Screen, in_hand: UpdatesInHand,
                 on_overflow: Callable[[], None], per_chat: int = MAX_WAITING_PER_CHAT) -> None:
        # PTB takes its own slot before calling us, hence before screening and before the
        # chat's turn: it gets no real bound, the slots that count are ours.
        super().__init__(2**31 - 1)
        self._screen = screen
        self.in_hand = in_hand
        self._on_overflow = on_overflow
        self._per_chat = per_chat
        self._slots = asyncio.Semaphore(max_concurrent)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: Counter[int] = Counter()
        self._overflowing: set[int] = set()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Screen the update, then await its processing in its chat's turn."""
        update_id = update.update_id if isinstance(update, Update) else None
        if update_id is not None:
            self.in_hand.take(update_id)
        try:
            work = self._screen(update, coroutine)
            if work is None:
                return
            chat = update.effective_chat if isinstance(update, Update) else None
            if chat is None:  # inline queries: no conversation to keep in order
                async with self._slots:
                    await work
                return
            await self._in_turn(chat.id, work)
        finally:
            if update_id is not None:
                self.in_hand.finish(update_id)

    async def _in_turn(self, chat_id: int, coroutine: Awaitable[Any]) -> None:
        if self._waiting[chat_id] >= self._per_chat:
            self._on_overflow()
            if chat_id not in self._overflowing:  # one line per flood, every drop counted
                self._overflowing.add(chat_id)
                logger.warning("dropping updates of %s: %d already waiting",
                               _chat_for_logs(chat_id), self._per_chat)
            _discard(coroutine)
            return
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._waiting[chat_id] += 1
        try:
            async with lock, self._slots:
                await coroutine
        finally:
            self._waiting[chat_id] -= 1
            if not self._waiting[chat_id]:  # forget idle chats: memory stays bounded
                del self._waiting[chat_id], self._locks[chat_id]
                self._overflowing.discard(chat_id)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


def _discard(coroutine: Awaitable[Any]) -> None:
    """Drop an update's processing without running it (and without a "never awaited" warning)."""
    if isinstance(coroutine, Coroutine):
        coroutine.close()


class _RecentIds:
    """The last update ids seen, to drop an update Telegram delivers twice."""

    def __init__(self, size: int) -> None:
        self._order: deque[int] = deque()
        self._ids: set[int] = set()
        self._size = size

    def seen(self, update_id: int) -> bool:
        if update_id in self._ids:
            return True
        self._order.append(update_id)
        self._ids.add(update_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return False
