"""Live reload of the knowledge base while `faqbot run` serves.

The watcher polls the file's size, modification time and inode (no extra dependency, works on
every file system) and also reloads on request (SIGHUP). A change is acted on once the file has
stayed the same for one poll, so an editor's half-written save is not mistaken for the new
content. Loading and training run on a worker thread; the result replaces the served bot in one
assignment (`FAQService.swap`), so no question is lost, delayed or answered twice. A file that
does not validate is refused with one log line and the previous knowledge base keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from bots.service import FAQService
from core import FAQBot, FaqbotError

logger = logging.getLogger(__name__)

Signature = tuple[int, int, int] | None


def file_signature(path: Path) -> Signature:
    """What changes when the file is written or replaced; None when it is missing."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


class KnowledgeBaseWatcher:
    """Reloads `path` into `service` when the file changes or `request_reload` is called.

    Create it right after loading the served knowledge base: the file as it is then is taken
    as the one being served. Setting `requests` (the event SIGHUP sets) asks for a reload;
    `on_outcome` hears "reloaded" or "refused" after each attempt (metrics, tests).
    """

    def __init__(self, path: Path, service: FAQService, *, interval: float = 2.0,
                 requests: asyncio.Event | None = None,
                 load: Callable[[Path], FAQBot] = FAQBot.from_path,
                 on_outcome: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.service = service
        self.interval = interval
        self._wanted = requests or asyncio.Event()
        self._load = load
        self._on_outcome = on_outcome
        self._loaded = file_signature(path)

    def request_reload(self) -> None:
        """Reload now, whether or not the file changed."""
        self._wanted.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set."""
        seen = self._loaded
        while not stop.is_set():
            await _first_of(stop, self._wanted, timeout=self.interval)
            if stop.is_set():
                return
            current = file_signature(self.path)
            if self._wanted.is_set() or (current != self._loaded and current == seen):
                self._wanted.clear()
                self._loaded = current  # a refused file is not retried until it changes
                await self.reload()
            seen = current

    async def reload(self) -> bool:
        """Load, validate and train in a worker thread, then swap; False when refused."""
        serving = self.service.kb.fingerprint()
        try:
            bot = await asyncio.to_thread(self._load_ready, self.path)
        except FaqbotError as error:
            logger.error("knowledge base not reloaded, still serving fingerprint %s: %s",
                         serving, error)
            self._report("refused")
            return False
        except Exception as error:  # a reload must never stop the bots
            logger.error("knowledge base not reloaded, still serving fingerprint %s: %s: %s",
                         serving, type(error).__name__, error, exc_info=error)
            self._report("refused")
            return False
        self.service.swap(bot)
        logger.info("knowledge base reloaded from %s: fingerprint %s, %d intents", self.path,
                    bot.kb.fingerprint(), len(bot.kb.intents))
        self._report("reloaded")
        return True

    def _load_ready(self, path: Path) -> FAQBot:
        bot = self._load(path)
        bot.classifier.load_encoder()  # here, not in the first question after the swap
        return bot

    def _report(self, outcome: str) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    """Return when any event is set, or after `timeout` seconds."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
