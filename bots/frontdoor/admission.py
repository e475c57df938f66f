"""Admission: whether the front door takes an event in, as one verdict.

Three checks, in this order: an event delivered twice is dropped; a place (chat, server) outside
the allow-list is refused, counted and logged in one line; a user over the rate limit gets one
notice per flood, then silence.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Collection

logger = logging.getLogger(__name__)

# Events remembered to recognise one delivered twice.
DUPLICATE_WINDOW = 2048
# The rate limiter forgets idle users once every this many checks, so memory stays bounded.
SWEEP_EVERY = 1000


class Verdict(enum.Enum):
    """What the front door does with an event."""

    ADMITTED = "admitted"
    NOTIFY = "notify"  # over the rate limit, first of a flood: one short notice
    SILENT = "silent"  # over the rate limit again: nothing, so a flood gets no amplification
    REFUSED = "refused"  # outside the allow-list
    DUPLICATE = "duplicate"  # delivered twice


class RateLimiter:
    """Per-user sliding window: at most `messages` in any `seconds`; one notice per flood.

    Every SWEEP_EVERY checks it forgets the users with no recent message.
    """

    def __init__(self, messages: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.messages = messages
        self.seconds = seconds
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._notified: set[int] = set()
        self._checks = 0

    def __len__(self) -> int:
        """How many users it remembers."""
        return len(self._recent)

    def check(self, user_id: int) -> Verdict:
        """ADMITTED, NOTIFY (first refusal of a flood) or SILENT (further refusals)."""
        self._checks += 1
        if self._checks % SWEEP_EVERY == 0:
            self._forget_idle()
        now = self._clock()
        recent = self._recent.setdefault(user_id, deque())
        while recent and now - recent[0] >= self.seconds:
            recent.popleft()
        if len(recent) < self.messages:
            recent.append(now)
            self._notified.discard(user_id)
            return Verdict.ADMITTED
        if user_id in self._notified:
            return Verdict.SILENT
        self._notified.add(user_id)
        return Verdict.NOTIFY

    def _forget_idle(self) -> None:
        now = self._clock()
        idle = [user for user, times in self._recent.items()
                if not times or now - times[-1] >= self.seconds]
        for user in idle:
            del self._recent[user]
            self._notified.discard(user)


class AccessPolicy:
    """An allow-list of place ids (chats, servers); an empty list lets everyone in.

    `open_without_place`: whether an event with no place (a Discord direct message) is let in.
    """

    def __init__(self, allowed: Collection[int], *, open_without_place: bool = False) -> None:
        self.allowed = frozenset(allowed)
        self.open_without_place = open_without_place

    def permits(self, place_id: int | None) -> bool:
        if not self.allowed:
            return True
        if place_id is None:
            return self.open_without_place
        return place_id in self.allowed


class RecentIds:
    """The last event ids seen, to drop an event delivered twice."""

    def __init__(self, size: int = DUPLICATE_WINDOW) -> None:
        self._order: deque[int] = deque()
        self._ids: set[int] = set()
        self._size = size

    def seen(self, event_id: int) -> bool:
        if event_id in self._ids:
            return True
        self._order.append(event_id)
        self._ids.add(event_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return False


class Admission:
    """The three checks of one platform; `count_refusal` is told of every refusal."""

    def __init__(self, access: AccessPolicy, limiter: RateLimiter, *, allow_list: str,
                 count_refusal: Callable[[], None],
                 describe_place: Callable[[int | None], str] = str) -> None:
        self.access = access
        self.limiter = limiter
        self._recent = RecentIds()
        self._allow_list = allow_list
        self._count_refusal = count_refusal
        self._describe_place = describe_place

    def admit(self, place: int | None, user: int | None, *, event_id: int | None = None,
              rate_limited: bool = True) -> Verdict:
        """The verdict on an event from `user` in `place` (a user of None is never admitted
        when rate limited); `rate_limited` off for what comes letter by letter (searches)."""
        if event_id is not None and self._recent.seen(event_id):
            logger.info("dropped event %d: delivered twice", event_id)
            return Verdict.DUPLICATE
        if not self.access.permits(place):
            self._count_refusal()
            logger.info("refused %s: not in %s", self._describe_place(place), self._allow_list)
            return Verdict.REFUSED
        if not rate_limited:
            return Verdict.ADMITTED
        return self.limiter.check(user) if user is not None else Verdict.SILENT
