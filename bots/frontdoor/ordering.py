"""Per-conversation order: first come, first served within a conversation, others at once.

Platform libraries handle each event in a task of its own, and the replies race: without turns
a user's second answer can overtake the first. A conversation is whatever key the adapter
gives (a chat; a user in a channel); different conversations never wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Hashable

logger = logging.getLogger(__name__)


class Turns:
    """FIFO turns per conversation key; `async with turns.turn(key) as served:` holds one.

    `per_key` bounds the events waiting in one conversation (more are dropped: `served` is
    False, each is told to `on_overflow`, the first of a flood is logged); `slots` bounds the
    conversations served at once, and only a conversation's current event holds a slot, so a
    conversation waiting out a platform's flood control holds one slot, not all.
    """

    def __init__(self, *, per_key: int | None = None, slots: int | None = None,
                 on_overflow: Callable[[], None] = lambda: None,
                 describe: Callable[[Hashable], str] = str) -> None:
        self._per_key = per_key
        self._slots = asyncio.Semaphore(slots) if slots else None
        self._on_overflow = on_overflow
        self._describe = describe
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._waiting: Counter[Hashable] = Counter()
        self._overflowing: set[Hashable] = set()

    def __len__(self) -> int:
        """How many conversations have an event waiting or served."""
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable | None) -> AsyncIterator[bool]:
        """Wait for the conversation's earlier events, then hold its turn (and a slot); a key
        of None (no conversation to keep in order) only takes a slot. Yields False, at once,
        for an event dropped because its conversation has too many waiting."""
        if key is None:
            async with self._slot():
                yield True
            return
        if not self._has_room(key):
            yield False
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] += 1
        try:
            async with lock, self._slot():
                yield True
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:  # forget idle conversations: memory stays bounded
                del self._waiting[key], self._locks[key]
                self._overflowing.discard(key)

    def _has_room(self, key: Hashable) -> bool:
        if self._per_key is None or self._waiting[key] < self._per_key:
            return True
        self._on_overflow()
        if key not in self._overflowing:  # one line per flood, every drop counted
            self._overflowing.add(key)
            logger.warning("dropping events of %s: %d already waiting", self._describe(key),
                           self._per_key)
        return False

    def _slot(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self._slots if self._slots is not None else contextlib.nullcontext()
