"""One active Telegram process among several: leader election on the shared PostgreSQL database.

Telegram gives a bot's updates to one receiver (one poller, or one webhook), so the processes of
a deployment that share a `postgresql://` question log elect the one that serves: the holder of
a session-level advisory lock, taken on a connection of its own. The others stand by.

What a database blink does (docs/deploy.md tells the whole story):
- The leader keeps serving while it cannot reach the database at all: the database is not on
  the reply path, and an outage must not stop every process at once. When its session comes
  back, it takes the lock again at once (within `poll` seconds).
- A standby takes the lock only after seeing it free for `grace` seconds in a row, longer than
  the leader needs to take it back; while the database is unreachable it sees nothing, so it
  counts nothing. A leader that died (its session ends with its process) is replaced after
  about `grace` seconds; a leader that finds the lock taken by another stops serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import zlib
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import psycopg

from bots.service import FAQService, Server
from core import Settings

if TYPE_CHECKING:
    from psycopg.rows import TupleRow

logger = logging.getLogger(__name__)

# The advisory locks of leadership are (LOCK_NAMESPACE, a number per platform): two 32-bit
# keys, apart from the question log's schema lock, which is one 64-bit key.
LOCK_NAMESPACE = 0x66617162  # "faqb"

_HOLDER = """
    SELECT coalesce(activity.application_name, '') FROM pg_locks AS lock
    LEFT JOIN pg_stat_activity AS activity ON activity.pid = lock.pid
    WHERE lock.locktype = 'advisory' AND lock.granted AND lock.objsubid = 2
      AND lock.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND lock.classid::bigint = %s AND lock.objid::bigint = %s"""


@dataclass(frozen=True)
class ElectionTiming:
    """How often the lock is looked at, and how long it must stay free before a takeover."""

    poll: float = 1.0  # a standby looks at the lock, a leader checks its session, this often
    grace: float = 5.0  # free this long in a row before a standby takes it (> poll + connect)
    query_timeout: float = 3.0  # a database that does not answer by then is unreachable


class LockState(Enum):
    """What this process knows of the lock after looking at it."""

    HELD = "held"  # this process holds it
    UNREACHABLE = "unreachable"  # the database cannot be reached: nothing is known
    TAKEN = "taken"  # another process holds it


def platform_lock(platform: str) -> tuple[int, int]:
    """The advisory lock (two 32-bit keys) that the leader of `platform` holds."""
    return LOCK_NAMESPACE, zlib.crc32(platform.encode()) & 0x7FFFFFFF


def elected(server: Server, platform: str, url: str,
            timing: ElectionTiming = ElectionTiming()) -> Server:
    """`server`, run only while this process leads `platform` among those sharing `url`."""

    async def serve(service: FAQService, settings: Settings, stop: asyncio.Event) -> None:
        election = Election(url, platform, timing, service)
        try:
            while await election.stand_by(stop):
                await election.lead(server, settings, stop)
        finally:
            await election.close()

    return serve


class Election:
    """This process's part in electing the leader of one platform."""

    def __init__(self, url: str, platform: str, timing: ElectionTiming,
                 service: FAQService) -> None:
        self.url = url
        self.platform = platform
        self.timing = timing
        self.service = service
        self.identity = f"faqbot {platform} {socket.gethostname()}:{os.getpid()}"[:63]
        self._lock = platform_lock(platform)
        self._connection: psycopg.AsyncConnection[TupleRow] | None = None
        self._report(leading=False, leader="unknown")

    async def stand_by(self, stop: asyncio.Event) -> bool:
        """Wait until this process holds the lock (True), or until `stop` is set (False)."""
        free_since: float | None = None
        while not stop.is_set():
            holder = await self._query(_HOLDER, self._lock)
            now = time.monotonic()
            if holder is None or holder:  # unreachable (nothing known), or someone leads
                free_since = None
                self._report(leading=False,
                             leader=str(holder[0][0]) if holder else "database unreachable")
            else:
                free_since = now if free_since is None else free_since
                if (now - free_since >= self.timing.grace
                        and await self._try_lock() is LockState.HELD):
                    logger.info("%s: this process leads now", self.platform)
                    return True
            await _sleep_unless(stop, self.timing.poll)
        return False

    async def lead(self, server: Server, settings: Settings, stop: asyncio.Event) -> None:
        """Serve until `stop` is set or another process took the lock; then stop serving."""
        stop_serving = asyncio.Event()
        serving = asyncio.create_task(server(self.service, settings, stop_serving))
        self._report(leading=True, leader=self.identity)
        state = LockState.HELD
        try:
            while not stop.is_set() and not serving.done():
                await _sleep_unless(stop, self.timing.poll)
                state = await self._check(state)
                if state is LockState.TAKEN:
                    logger.warning("%s: another process took the lead; this one stops serving",
                                   self.platform)
                    break
        finally:
            stop_serving.set()
            await serving  # the server's own failure, if any, goes up from here
            self._report(leading=False, leader="unknown")

    async def _check(self, state: LockState) -> LockState:
        """The leader's lock now: held while its session lives; once the session is lost,
        taken again as soon as the database answers (UNREACHABLE until then: serve on)."""
        if state is LockState.HELD and await self._query("SELECT 1", ()) is not None:
            return LockState.HELD
        if state is LockState.HELD:
            logger.warning("%s: lost the database session; serving on, taking the lock again "
                           "once the database answers", self.platform)
        now = await self._try_lock()
        if now is LockState.HELD and state is not LockState.HELD:
            logger.info("%s: database back, the lock is ours again", self.platform)
        return now

    async def _try_lock(self) -> LockState:
        taken = await self._query("SELECT pg_try_advisory_lock(%s, %s)", self._lock)
        if taken is None:
            return LockState.UNREACHABLE
        return LockState.HELD if taken[0][0] else LockState.TAKEN

    async def _query(self, sql: str, params: tuple[Any, ...]) -> list[TupleRow] | None:
        """The rows of one query on the election connection, connecting first if needed; None
        when the database cannot be reached (the connection is then dropped, and with it any
        lock it held)."""
        try:
            async with asyncio.timeout(self.timing.query_timeout):
                if self._connection is None or self._connection.closed:
                    self._connection = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, application_name=self.identity,
                        connect_timeout=max(1, round(self.timing.query_timeout)))
                cursor = await self._connection.execute(sql, params)
                return await cursor.fetchall()
        except (psycopg.Error, OSError, TimeoutError) as error:
            logger.debug("%s election: database unreachable: %s", self.platform, error)
            await self.close()
            return None

    async def close(self) -> None:
        """Close the election connection (which releases the lock if this process held it)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await connection.close()

    def _report(self, *, leading: bool, leader: str) -> None:
        if self.service.metrics is not None:
            self.service.metrics.set_leader(self.platform, leading, leader)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
