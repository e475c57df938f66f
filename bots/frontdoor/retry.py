"""The one retry policy for sends: transient failures are tried again, so no reply is lost.

The adapter says what a failure means (`judge`): final, retry after the delay the platform
asks for (flood control), or retry after an exponential backoff (a network error, a timeout,
a 5xx). A send that timed out may have been delivered: retrying risks a duplicate, never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Retry:
    """Try again after `after` seconds (what the platform asked), else after the backoff."""

    after: float | None = None


# A failure's meaning: Retry, or None when it is final.
Judge = Callable[[Exception], Retry | None]


class RetryPolicy:
    """Up to `attempts` in all, `backoff` * 2**n seconds apart (at most `max_backoff`); a wait
    asked by the platform longer than `max_wait` is final. `stop_waiting` makes every call
    waiting to retry give up now (a stop's drain deadline passed)."""

    def __init__(self, platform: str, *, attempts: int, backoff: float = 0.5,
                 max_backoff: float = 8.0, max_wait: float = 60.0) -> None:
        self.platform = platform
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self._stopping = asyncio.Event()

    def stop_waiting(self) -> None:
        """Make the calls waiting to retry give up now."""
        self._stopping.set()

    def delay(self, attempt: int, retry: Retry) -> float | None:
        """Seconds to wait after failed attempt number `attempt`, or None to give up."""
        if attempt >= self.attempts:
            return None
        if retry.after is not None:
            return retry.after if retry.after <= self.max_wait else None
        return min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)

    async def run(self, call: Callable[[], Awaitable[T]], judge: Judge, what: str) -> T:
        """`call()`, tried again as `judge` says; the last failure is raised."""
        attempt = 1
        while True:
            try:
                return await call()
            except Exception as error:
                retry = judge(error)
                delay = None if retry is None else self.delay(attempt, retry)
                if delay is None:
                    raise
                logger.warning("%s %s failed (%s): attempt %d of %d in %.1f s", self.platform,
                               what, type(error).__name__, attempt + 1, self.attempts, delay)
                if await self._stopped_during(delay):
                    raise
            attempt += 1

    async def _stopped_during(self, delay: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stopping.wait()
        return self._stopping.is_set()
